"""Error answers the gateway itself gives, in the dialect of the stack the path belongs to."""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

Send = Any


def legacy_error(status: int, code: str, message: str) -> tuple[bytes, bytes]:
    body = {"error": {"code": code, "message": message}}
    return b"application/json", json.dumps(body).encode()


def problem(status: int, detail: str) -> tuple[bytes, bytes]:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return b"application/problem+json", json.dumps(body).encode()


def error_for_path(
    path: str, legacy_prefix: str, status: int, code: str, message: str
) -> tuple[bytes, bytes]:
    """Content type and body of an error in the dialect of the stack `path` belongs to."""
    is_legacy = path == legacy_prefix or path.startswith(legacy_prefix + "/")
    return legacy_error(status, code, message) if is_legacy else problem(status, message)


async def send_error(
    send: Send,
    *,
    path: str,
    legacy_prefix: str,
    status: int,
    code: str,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with the legacy error body under the legacy prefix, problem details elsewhere."""
    content_type, body = error_for_path(path, legacy_prefix, status, code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
