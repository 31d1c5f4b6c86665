"""Request body size limit for every path of the gateway (pure ASGI: nothing buffered twice).

A declared Content-Length over the limit is refused before the app runs. A body without
one (chunked) is read up front, up to the limit, and replayed: refusing it half-way would
leave the Flask side holding a truncated body, and the limit must hold for both stacks.
"""

from __future__ import annotations

from typing import Any

from gateway.responses import send_error

Scope = dict[str, Any]
Message = dict[str, Any]


class BodySizeLimit:
    def __init__(self, app: Any, *, max_bytes: int, legacy_prefix: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.legacy_prefix = legacy_prefix

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None:
            if length > self.max_bytes:
                await self._refuse(scope, send)
                return
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Any) -> None:
        await send_error(
            send,
            path=scope["path"],
            legacy_prefix=self.legacy_prefix,
            status=413,
            code="payload_too_large",
            message=f"request body larger than {self.max_bytes} bytes",
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
