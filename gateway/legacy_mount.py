"""Mounting a WSGI (Flask) app in the gateway: a2wsgi, with the pitfalls of the mount handled.

a2wsgi runs the WSGI app in its own thread pool. As shipped, a mounted Flask app:

- reads an empty body when the request is chunked (no Content-Length): Werkzeug only
  reads such a stream when the server sets `wsgi.input_terminated`;
- sees duplicate `Cookie` headers joined with "," instead of "; ", and loses cookies;
- can keep a pool thread blocked for good when the ASGI request is cancelled (client gone,
  a timeout): the thread waits on a full send queue that nobody drains any more, or on a
  body read that never completes; after `workers` such requests every legacy request hangs;
- never gets its executor shut down, because a mounted app receives no lifespan events;
- queues requests without limit when every pool thread is busy: under overload a legacy
  request waits as long as the backlog lasts, and the client only sees a timeout.

`LegacyMount` fixes all five. It keeps a2wsgi's environ building and body, and serves
each request with its own responder (gateway/wsgi_responder.py), which also crosses
between the pool thread and the event loop less often than a2wsgi's. A request waits at most
`queue_timeout_s` for a free pool thread, then gets 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, cast
from wsgiref.types import WSGIApplication

from a2wsgi.asgi_typing import HTTPScope
from a2wsgi.asgi_typing import Receive as WSGIReceive
from a2wsgi.asgi_typing import Send as WSGISend
from a2wsgi.wsgi_typing import Environ, StartResponse, WSGIApp
from starlette.types import Receive, Scope, Send

from gateway.responses import ErrorFormat, ErrorFormats, problem_details, send_error
from gateway.wsgi_responder import Responder

RETRY_AFTER_S = 1
QUEUE_TIMEOUT = "queue_timeout"


class PoolObserver(Protocol):
    """Told of the pool's state as it changes (the gateway's metrics listen)."""

    def pool_changed(self, busy: int, waiting: int) -> None: ...

    def request_rejected(self, reason: str) -> None: ...


class _Unobserved:
    def pool_changed(self, busy: int, waiting: int) -> None:
        pass

    def request_rejected(self, reason: str) -> None:
        pass


class _MountEnviron:
    """WSGI wrapper that corrects the environ a2wsgi builds."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        extra = cast(dict[str, Any], environ)
        # a2wsgi's Body ends exactly where the ASGI body ends, chunked or not.
        extra["wsgi.input_terminated"] = True
        # Tracebacks belong in the error log, not on stdout with the access log.
        extra["wsgi.errors"] = sys.stderr
        headers = extra["asgi.scope"]["headers"]
        cookies = [value for name, value in headers if name == b"cookie"]
        if len(cookies) > 1:
            # RFC 6265 section 5.4: several cookie headers are folded with "; ".
            extra["HTTP_COOKIE"] = "; ".join(value.decode("latin-1") for value in cookies)
        return self.app(environ, start_response)


class LegacyMount:
    """An ASGI app serving a WSGI app from a bounded thread pool; see the module docstring."""

    send_queue_size = 10  # a2wsgi's default: response chunks buffered per request

    def __init__(
        self,
        app: WSGIApplication,
        *,
        workers: int,
        queue_timeout_s: float = 10.0,
        error_format: ErrorFormat = problem_details,
    ) -> None:
        self.wsgi_app = app
        # The busy answer is in the format of the side this mount serves, at any path.
        self.errors = ErrorFormats(default=error_format)
        self.app = cast(WSGIApp, _MountEnviron(cast(WSGIApp, app)))
        self.workers = workers
        self.queue_timeout_s = queue_timeout_s
        self.executor = ThreadPoolExecutor(thread_name_prefix="legacy-wsgi", max_workers=workers)
        # One slot per pool thread: a request holds one from before its work is queued
        # until its WSGI call is over, so the executor's own queue never grows.
        self._slots = asyncio.Semaphore(workers)
        self._busy = 0
        self._waiting = 0
        # Called on the event loop only, where the counts change.
        self.observer: PoolObserver = _Unobserved()

    @property
    def busy(self) -> int:
        """Requests holding a pool thread (or about to): `workers` means saturated."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Requests waiting for a pool thread."""
        return self._waiting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["type"] != "http":
            return
        if not await self._take_slot():
            self.observer.request_rejected(QUEUE_TIMEOUT)
            await self._send_busy(scope, send)
            return
        responder: Responder | None = None
        try:
            responder = Responder(self.app, self.executor, self.send_queue_size, self._give_slot)
            await responder(
                cast(HTTPScope, scope), cast(WSGIReceive, receive), cast(WSGISend, send)
            )
        finally:
            if responder is None or not responder.slot_handed_over:
                self._give_slot()

    async def _take_slot(self) -> bool:
        if not self._slots.locked():
            # A free thread and nobody ahead: taken at once, with no deadline to set up.
            await self._slots.acquire()
            self._busy += 1
            self.observer.pool_changed(self._busy, self._waiting)
            return True
        self._waiting += 1
        self.observer.pool_changed(self._busy, self._waiting)
        taken = False
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await self._slots.acquire()
            taken = True
        except TimeoutError:
            pass
        finally:
            # One change for both counts: the request stops waiting and (maybe) holds one.
            self._waiting -= 1
            self._busy += taken
            self.observer.pool_changed(self._busy, self._waiting)
        return taken

    def _give_slot(self) -> None:
        self._busy -= 1
        self._slots.release()
        self.observer.pool_changed(self._busy, self._waiting)

    def shutdown(self) -> None:
        """Let running legacy requests finish, drop queued ones, stop the threads."""
        self.executor.shutdown(wait=True, cancel_futures=True)

    async def _send_busy(self, scope: Scope, send: Send) -> None:
        await send_error(
            send,
            self.errors,
            path=scope["path"],
            status=503,
            code="service_unavailable",
            message="The legacy service is busy; try again shortly.",
            headers=[(b"retry-after", str(RETRY_AFTER_S).encode())],
            close=False,
        )
