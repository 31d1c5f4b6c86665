"""The body limit at the ASGI level: the edges of the limit, and what the app is handed.

The gateway's tests send bodies over the limit through a real server; these send the
messages a server would, to reach what a server's own parser never lets through (a
Content-Length that is no number) and the exact bounds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.body_limit import BodyLimits
from gateway.responses import ErrorFormats

LIMIT = 10


class _App:
    """Records the body it reads, and the message that follows it."""

    def __init__(self) -> None:
        self.body = b""
        self.after: dict[str, Any] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.after = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _serve(
    headers: list[tuple[bytes, bytes]], messages: list[dict[str, Any]]
) -> tuple[_App, int | None]:
    app = _App()
    limits = BodyLimits(app, max_bytes=LIMIT, timeout_s=5, errors=ErrorFormats())
    scope = {"type": "http", "method": "POST", "path": "/echo", "headers": headers}
    statuses: list[int] = []
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    asyncio.run(asyncio.wait_for(limits(scope, receive, send), timeout=10))
    return app, statuses[0] if statuses else None


def _body(*chunks: bytes) -> list[dict[str, Any]]:
    last = len(chunks) - 1
    return [
        {"type": "http.request", "body": chunk, "more_body": index < last}
        for index, chunk in enumerate(chunks)
    ]


def _length(size: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(size).encode())]


CHUNKED = [(b"transfer-encoding", b"chunked")]


def test_a_body_of_exactly_the_limit_is_taken() -> None:
    app, status = _serve(_length(LIMIT), _body(b"x" * LIMIT))
    assert (status, app.body) == (200, b"x" * LIMIT)
    app, status = _serve(CHUNKED, _body(b"x" * 4, b"x" * 4, b"x" * 2))
    assert (status, app.body) == (200, b"x" * LIMIT)


@pytest.mark.parametrize("chunks", [[b"x" * (LIMIT + 1)], [b"x" * 6, b"x" * 5]])
def test_a_chunked_body_one_byte_over_the_limit_is_413(chunks: list[bytes]) -> None:
    app, status = _serve(CHUNKED, _body(*chunks))
    assert (status, app.body) == (413, b"")


def test_the_app_gets_the_body_once_then_the_clients_disconnect() -> None:
    app, status = _serve(CHUNKED, _body(b"abc", b"def"))
    assert (status, app.body) == (200, b"abcdef")
    assert app.after == {"type": "http.disconnect"}


def test_a_body_message_without_more_body_is_the_last() -> None:
    # ASGI: more_body may be left out, and then it is False.
    app, status = _serve(_length(3), [{"type": "http.request", "body": b"abc"}])
    assert (status, app.body) == (200, b"abc")


def test_a_content_length_that_is_no_number_is_read_under_the_limits() -> None:
    app, status = _serve([(b"content-length", b"three")], _body(b"abc"))
    assert (status, app.body) == (200, b"abc")
    app, status = _serve([(b"content-length", b"three")], _body(b"x" * (LIMIT + 1)))
    assert status == 413
