"""uvicorn's httptools protocol, with the connection limits it lacks.

uvicorn bounds an idle keep-alive connection (`timeout_keep_alive`), but with httptools
(its fast parser, and our default) nothing bounds the request head: a connection that
never sends anything, or never finishes its headers, is held for good, and a header of
any size is buffered whole (a 128 MiB one was accepted). Its own `limit_concurrency`,
once reached, refuses the requests of every connection, established ones included, in
plain text. This subclass adds, per connection:

- a header deadline: from the connection's start, and from the first byte of each later
  request, the headers must be complete within `header_timeout_s`, or the connection is
  closed (after the response in flight, if there is one);
- a header size limit: a request head over `max_header_bytes` is answered 431, while it
  is still arriving, so that at most about one socket read more than the limit is held;
- a connection cap: a connection accepted past `max_connections` has its request answered
  503 and is closed; the connections already open are served as before.

Refusals are in the error format of the side the path belongs to (gateway/responses.py).

This relies on uvicorn internals (the parser callbacks, `self.app` read when the headers
are complete, `self.cycle`, `self.url`): pyproject.toml pins the uvicorn version range,
and tests/gateway/test_slow_clients.py checks each limit on a real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.responses import ErrorFormats, send_error

RETRY_AFTER_S = b"1"  # for a connection refused at the cap: connections come and go quickly


@dataclass(frozen=True)
class ConnectionLimits:
    """What the protocol enforces; picklable, so that `--workers N` processes get it too."""

    max_header_bytes: int
    header_timeout_s: float
    max_connections: int
    errors: ErrorFormats


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._head_deadline: asyncio.TimerHandle | None = None
        # True from the connection's start, and from each request's end, until the next
        # request's headers are complete.
        self._reading_head = True
        self._head_started = False  # between a request's first byte and its complete head
        self._head_bytes = 0  # of the head being read, in the chunks before the current one
        self._chunk_bytes = 0  # the size of the chunk being parsed
        self._heads_completed = 0
        self._over_capacity = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._over_capacity = len(self.connections) > self.limits.max_connections
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        starts_in_head = self._reading_head
        heads_before = self._heads_completed
        self._chunk_bytes = len(data)
        super().data_received(data)
        all_head = starts_in_head and self._heads_completed == heads_before
        if not (self._head_started or all_head) or self.transport.is_closing():
            return  # the usual case: a whole head (and body) in one chunk
        # A head is unfinished at the end of this chunk (or the chunk began no request: a
        # stray CRLF, which is enough to cancel uvicorn's keep-alive timer). Armed here
        # rather than per request, so that a head read in one go costs no timer.
        self._arm_head_deadline()
        if all_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse_incomplete_head()

    # Parser callbacks (called by httptools from within `data_received`).

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True

    def on_headers_complete(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        self._reading_head = self._head_started = False
        self._heads_completed += 1
        # All the bytes read since the head began fit the limit: no need to count.
        fits = self._head_bytes + self._chunk_bytes <= self.limits.max_header_bytes
        self._head_bytes = 0
        if fits and not self._over_capacity:
            super().on_headers_complete()
            return
        refusal = self._refusal()
        if refusal is None:
            super().on_headers_complete()
            return
        # uvicorn picks the ASGI app for this request from `self.app` (as it does for its own
        # `limit_concurrency` refusals): the refusal answers instead, then closes.
        app, self.app = self.app, refusal
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._reading_head = True
        super().on_message_complete()

    # The limits.

    def _refusal(self) -> _Refusal | None:
        if self._over_capacity:
            return _Refusal(
                self.limits,
                503,
                "service_unavailable",
                "too many connections; try again shortly",
                headers=[(b"retry-after", RETRY_AFTER_S)],
            )
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            return _header_too_large(self.limits)
        return None

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(
                self.limits.header_timeout_s, self._head_timed_out
            )

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()
        else:
            # A pipelined head is late while a response is still being sent: finish that
            # response, then close.
            self.cycle.keep_alive = False

    def _refuse_incomplete_head(self) -> None:
        """Answer 431 before the head is complete (there is no ASGI request yet) and close."""
        self._cancel_head_deadline()
        refusal = _header_too_large(self.limits)
        url: bytes = getattr(self, "url", b"")
        path = url.split(b"?", 1)[0].decode("latin-1")
        content_type, body = self.limits.errors.render(
            path, refusal.status, refusal.code, refusal.message
        )
        status = HTTPStatus(refusal.status)
        head = [f"HTTP/1.1 {status.value} {status.phrase}".encode()]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        head += [
            b"content-type: " + content_type,
            b"content-length: " + str(len(body)).encode(),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()


class _Refusal:
    """An ASGI app that answers one error in the format of the request's side."""

    def __init__(
        self,
        limits: ConnectionLimits,
        status: int,
        code: str,
        message: str,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.errors = limits.errors
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send_error(
            send,
            self.errors,
            path=scope["path"],
            status=self.status,
            code=self.code,
            message=self.message,
            headers=self.headers,
        )


def _header_too_large(limits: ConnectionLimits) -> _Refusal:
    return _Refusal(
        limits,
        431,
        "header_fields_too_large",
        f"request headers larger than {limits.max_header_bytes} bytes",
    )
