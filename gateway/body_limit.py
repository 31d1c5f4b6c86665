"""Request bodies read whole, within a size limit and a deadline, before any app runs (pure ASGI).

The legacy mount runs Flask in a bounded thread pool, and Flask reads the body in its
thread: a client that declares a body and then sends nothing would hold a pool thread for
as long as it kept the socket open, and a handful of such clients would stop every legacy
route. So every body is read here, in the event loop where a waiting request costs no
thread, and replayed to the app in one message: a legacy request takes a pool thread only
once its body is complete.

- A declared Content-Length over the limit is refused before anything is read (413); a
  chunked body is refused as soon as it grows past the limit (413). Refusing half-way
  through the app would leave the Flask side holding a truncated body.
- A body that is not complete within `timeout_s` is answered 408, and the connection
  closed. The deadline holds on every path, v2's included.
- A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112,
  section 6.3): it goes straight through, so reads pay nothing for this.

Memory: at most `max_bytes` per request, accumulated in one buffer and handed over as one
`bytes` (a body that trickles in as many small messages does not become many objects).
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.responses import ErrorFormats, send_error

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Any
Send = Any


class _TooLarge(Exception):
    pass


class BodyLimits:
    def __init__(self, app: Any, *, max_bytes: int, timeout_s: float, errors: ErrorFormats) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.errors = errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body, length = _framing(scope)
        if not has_body:
            await self.app(scope, receive, send)
            return
        if length is not None and length > self.max_bytes:
            await self._refuse_too_large(scope, send)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            await send_error(
                send,
                self.errors,
                path=scope["path"],
                status=408,
                code="request_timeout",
                message=f"request body not received within {self.timeout_s:g} s",
            )
            return
        except _TooLarge:
            await self._refuse_too_large(scope, send)
            return
        if body is None:
            return  # the client went away: nobody is left to answer

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                # What the app waits for after the body: the client's disconnect.
                message: Message = await receive()
                return message
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None when the client disconnects before sending it."""
        first = b""
        buffer: bytearray | None = None
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                raise _TooLarge
            if buffer is not None:
                buffer += chunk
            elif not first:
                first = chunk
            elif chunk:
                buffer = bytearray(first)
                buffer += chunk
            if not message.get("more_body", False):
                return first if buffer is None else bytes(buffer)

    async def _refuse_too_large(self, scope: Scope, send: Send) -> None:
        await send_error(
            send,
            self.errors,
            path=scope["path"],
            status=413,
            code="payload_too_large",
            message=f"request body larger than {self.max_bytes} bytes",
        )


def _framing(scope: Scope) -> tuple[bool, int | None]:
    """Whether the request has a body, and its declared length when the client gave one."""
    length: bytes | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value
        elif name == b"transfer-encoding":
            chunked = True
    if chunked:
        return True, None
    if length is None:
        return False, None
    try:
        declared = int(length)
    except ValueError:
        return True, None  # the server's parser refuses these; read it under the limits anyway
    return declared != 0, declared
