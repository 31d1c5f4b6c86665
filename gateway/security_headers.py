"""Response hygiene for every path of the gateway, both stacks and its own routes alike.

Pure ASGI and cheap: the headers are precomputed and appended to each response start,
except those the app has set on that response itself.

`TRACE` is refused everywhere: an answer that echoes the request would hand its headers,
tokens among them, to whatever script can make the request. The request still goes to
the app, because only the app knows which methods the path has, and a 405 must say so in
`Allow` (RFC 9110); the app's own 405 passes, and anything else it answers is replaced by
a 405 whose empty `Allow` says the resource takes no method.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.responses import send_error

HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    # Browsers must take JSON as JSON, never sniff it into HTML or a script.
    (b"x-content-type-options", b"nosniff"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, legacy_prefix: str) -> None:
        self.app = app
        self.legacy_prefix = legacy_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A new list: the app may send the same header list again for another request.
                headers = list(message.get("headers", ()))
                # A header the app set for this answer wins over the default (the docs pages
                # bring their own Content-Security-Policy): one value, never two.
                present = {name.lower() for name, _ in headers}
                headers += [header for header in HEADERS if header[0] not in present]
                message["headers"] = headers
            await send(message)

        if scope["method"] == "TRACE":
            await self._refuse_trace(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _refuse_trace(self, scope: Scope, receive: Receive, send: Send) -> None:
        replaced = False

        async def only_a_405(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] != 405:
                replaced = True
                await send_error(
                    send,
                    path=scope["path"],
                    legacy_prefix=self.legacy_prefix,
                    status=405,
                    code="method_not_allowed",
                    message="TRACE is not allowed.",
                    headers=[(b"allow", b"")],
                )
            elif not replaced:
                await send(message)

        await self.app(scope, receive, only_a_405)
