"""Mounting a WSGI (Flask) app in the gateway: a2wsgi, with the pitfalls of the mount handled.

a2wsgi runs the WSGI app in its own thread pool. As shipped, a mounted Flask app:

- reads an empty body when the request is chunked (no Content-Length): Werkzeug only
  reads such a stream when the server sets `wsgi.input_terminated`;
- sees duplicate `Cookie` headers joined with "," instead of "; ", and loses cookies;
- can keep a pool thread blocked for good when the ASGI request is cancelled (client gone,
  a timeout): the thread waits on a full send queue that nobody drains any more, or on a
  body read that never completes; after `workers` such requests every legacy request hangs;
- never gets its executor shut down, because a mounted app receives no lifespan events.

`LegacyMount` fixes all four. It keeps a2wsgi's environ building and response plumbing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import sys
from collections.abc import Iterable
from typing import Any

from a2wsgi.wsgi import Body, WSGIMiddleware, WSGIResponder, build_environ

Environ = dict[str, Any]
WSGIApp = Any  # a2wsgi's own WSGI protocol types are not exported


class RequestAbandoned(Exception):
    """Raised inside the WSGI thread once the ASGI side has given up on the request."""


class _MountEnviron:
    """WSGI wrapper that corrects the environ a2wsgi builds."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: Environ, start_response: Any) -> Iterable[bytes]:
        # a2wsgi's Body ends exactly where the ASGI body ends, chunked or not.
        environ["wsgi.input_terminated"] = True
        # Tracebacks belong in the error log, not on stdout with the access log.
        environ["wsgi.errors"] = sys.stderr
        cookies = [value for name, value in environ["asgi.scope"]["headers"] if name == b"cookie"]
        if len(cookies) > 1:
            # RFC 6265 section 5.4: several cookie headers are folded with "; ".
            environ["HTTP_COOKIE"] = "; ".join(value.decode("latin-1") for value in cookies)
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


class _AbandonableBody(Body):
    """A request body whose pending read is cut short when the request is abandoned."""

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Any) -> None:
        super().__init__(loop, receive)
        self.abandoned = False
        self._pending: concurrent.futures.Future[Any] | None = None

    def _receive_more_data(self) -> bytes:
        if not self._has_more:
            return b""
        if self.abandoned:
            raise RequestAbandoned
        self._pending = asyncio.run_coroutine_threadsafe(self.receive(), loop=self.loop)
        try:
            message = self._pending.result()
        except concurrent.futures.CancelledError as exc:
            raise RequestAbandoned from exc
        self._has_more = message.get("more_body", False)
        body: bytes = message.get("body", b"")
        return body

    def abandon(self) -> None:
        self.abandoned = True
        if self._pending is not None:
            self._pending.cancel()


class _Responder(WSGIResponder):  # type: ignore[misc]
    """a2wsgi's responder, made to release its worker thread when the request is cancelled."""

    abandoned = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = _AbandonableBody(self.loop, receive)
        environ = build_environ(scope, body)
        sender = self.loop.create_task(self.sender(send))
        try:
            run = functools.partial(contextvars.copy_context().run, self.wsgi)
            await self.loop.run_in_executor(self.executor, run, environ, self.start_response)
            await self.send_queue.put(None)
            await sender
            if self.exc_info is not None:
                raise self.exc_info[0].with_traceback(self.exc_info[1], self.exc_info[2])
        except BaseException:
            self._abandon(body)
            raise
        finally:
            if not sender.done():
                sender.cancel()

    def _abandon(self, body: _AbandonableBody) -> None:
        self.abandoned = True
        body.abandon()
        # Wake a worker blocked on the full queue; its next send raises RequestAbandoned.
        while not self.send_queue.empty():
            self.send_queue.get_nowait()

    def send(self, message: Any) -> None:
        if self.abandoned:
            raise RequestAbandoned
        super().send(message)


class LegacyMount(WSGIMiddleware):  # type: ignore[misc]
    """An ASGI app serving a WSGI app from a bounded thread pool; see the module docstring."""

    def __init__(self, app: WSGIApp, *, workers: int) -> None:
        super().__init__(_MountEnviron(app), workers=workers)
        self.workers = workers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        await _Responder(self.app, self.executor, self.send_queue_size)(scope, receive, send)

    def shutdown(self) -> None:
        """Let running legacy requests finish, drop queued ones, stop the threads."""
        self.executor.shutdown(wait=True, cancel_futures=True)
