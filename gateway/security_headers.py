"""Response hygiene for every path of the gateway, both stacks and its own routes alike.

Pure ASGI and cheap: the headers are precomputed and appended to each response start,
except those the app has set on that response itself.

- Every answer says `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and has a
  `Content-Security-Policy`. An API answer is data, never a page: its policy lets it load
  nothing and be framed by nobody. The few HTML pages the gateway serves set a policy of
  their own (gateway/docs.py), which allows exactly what they load, and it is kept.
- An absolute `Location` that points at the request's own `Host` becomes a path.
  Starlette's slash redirect builds its `Location` from the `Host` header, so a forged
  header would send the client (and its next request) to whatever host it names.
- A request with more than one `Authorization` header is refused with 400: one stack
  would read the first, another the last, or both joined; which credential counts must
  not depend on the stack.
- `TRACE` is refused everywhere: an answer that echoes the request would hand its
  headers, tokens among them, to whatever script can make the request. The request
  still goes to the app, because only the app knows which methods the path has, and a
  405 must say so in `Allow` (RFC 9110); the app's own 405 passes, and anything else it
  answers is replaced by a 405 whose empty `Allow` says the resource takes no method.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.responses import ErrorFormats, send_error

Headers = tuple[tuple[bytes, bytes], ...]

HEADERS: Final[Headers] = (
    # Browsers must take JSON as JSON, never sniff it into HTML or a script.
    (b"x-content-type-options", b"nosniff"),
    # No page of the gateway may be framed (clickjacking); CSP's frame-ancestors says
    # the same to browsers that read it, this to the older ones.
    (b"x-frame-options", b"DENY"),
    # An API answer is data, never a page: it may load nothing and be framed by nobody.
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _own_origins(scope: Scope) -> list[str]:
    """The origins an absolute URL built from this request starts with, as Starlette's
    `URL(scope=...)` builds them: the Host header if any, else the server address."""
    scheme = scope.get("scheme", "http")
    origins = [
        f"{scheme}://{value.decode('latin-1')}"
        for name, value in scope["headers"]
        if name == b"host"
    ]
    server = scope.get("server")
    if server is not None:
        host, port = server
        origins.append(f"{scheme}://{host}:{port}")
        if port == _DEFAULT_PORTS.get(scheme):
            origins.append(f"{scheme}://{host}")
    return origins


def _relative_location(location: bytes, scope: Scope) -> bytes:
    """The location as a path when it points at the request's own origin; else as is."""
    text = location.decode("latin-1")
    lowered = text.lower()
    for origin in _own_origins(scope):
        if not lowered.startswith(origin.lower()):
            continue
        rest = text[len(origin) :]
        if rest == "" or rest[0] in "/?#":
            # A path that starts with // would be read as another host: keep one slash.
            return ("/" + rest.lstrip("/")).encode("latin-1")
    return location


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, errors: ErrorFormats) -> None:
        self.app = app
        self.errors = errors

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
                for index, (name, value) in enumerate(headers):
                    if name.lower() == b"location":
                        headers[index] = (name, _relative_location(value, scope))
                message["headers"] = headers
            await send(message)

        if sum(1 for name, _ in scope["headers"] if name == b"authorization") > 1:
            await send_error(
                send_with_headers,
                self.errors,
                path=scope["path"],
                status=400,
                code="bad_request",
                message="Send one Authorization header, not several.",
            )
            return
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
                    self.errors,
                    path=scope["path"],
                    status=405,
                    code="method_not_allowed",
                    message="TRACE is not allowed.",
                    headers=[(b"allow", b"")],
                )
            elif not replaced:
                await send(message)

        await self.app(scope, receive, only_a_405)
