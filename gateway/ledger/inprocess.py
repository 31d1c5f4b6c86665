"""Calling the v2 app in process: a legacy request turned into a v2 request, and back.

The v2 app is called as the gateway's own mount would call it (`root_path` is the v2
prefix, so the `Location` it builds is a v2 URL), in the legacy request's task: its
request id, its client address and its `state` travel along. The answer is collected whole:
an adapter rewrites it before the legacy client sees any of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope

# Set by the dispatch in the legacy request's scope: where the v2 app is mounted.
V2_ROOT_KEY: Final = "gateway.v2_root"
# What Starlette's routing leaves in a scope on the way in: the v2 app routes afresh.
_ROUTING_KEYS: Final = ("app", "router", "route", "endpoint", "path_params", "app_root_path")


@dataclass
class V2Request:
    """What goes to the v2 app: method and path under its prefix, query, headers, body."""

    method: str
    path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class V2Answer:
    """What came back, whole; adapters may rewrite any part before it is sent."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    # Read once, by whichever part needs it first (see `adapters.json_of`).
    cache: dict[str, Any] = field(default_factory=dict)

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)

    def set_header(self, name: bytes, value: bytes | None) -> None:
        self.headers = [(key, val) for key, val in self.headers if key != name]
        if value is not None:
            self.headers.append((name, value))


async def read_body(receive: Receive) -> bytes:
    """The whole request body (the gateway's body limit has already bounded it)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def call_v2(app: ASGIApp, scope: Scope, receive: Receive, request: V2Request) -> V2Answer:
    """Serve `request` with `app`, in the task of the legacy request `scope`."""
    root: str = scope[V2_ROOT_KEY]
    path = root + request.path
    child = {key: value for key, value in scope.items() if key not in _ROUTING_KEYS}
    child.update(
        method=request.method,
        path=path,
        raw_path=quote(path).encode("ascii"),
        root_path=root,
        query_string=request.query_string,
        headers=request.headers,
    )
    body_sent = False

    async def child_receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        # Once the body is read, what is left to hear is the client going away.
        return await receive()

    answer = V2Answer(status=500, headers=[])
    chunks: list[bytes] = []

    async def child_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(child, child_receive, child_send)
    answer.body = b"".join(chunks)
    return answer
