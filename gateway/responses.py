"""The answers the gateway gives itself (413, 408, 431, 503...), in each side's error format.

A team decides what its errors look like: an `ErrorFormat` per side, registered with the
gateway (`AppPair.legacy_errors`, `AppPair.v2_errors`, or `--legacy-errors` and
`--v2-errors` on the command line). Without one, a side gets RFC 9457 problem details.
The formats are plain module-level functions, so that `--workers N` processes can get them
too (uvicorn pickles its options for them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

Send = Any

# (status, code, message) -> (content type, body). `code` is a short machine-readable name
# such as "payload_too_large"; `message` says what happened, for people.
ErrorFormat = Callable[[int, str, str], tuple[str, bytes]]


def problem_details(status: int, code: str, message: str) -> tuple[str, bytes]:
    """RFC 9457: the default format of both sides and of the gateway's own paths."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": message,
    }
    return "application/problem+json", json.dumps(body).encode()


@dataclass(frozen=True)
class ErrorFormats:
    """Which format an error takes, by the path prefix it was asked at."""

    sides: tuple[tuple[str, ErrorFormat], ...] = ()
    default: ErrorFormat = problem_details

    def for_path(self, path: str) -> ErrorFormat:
        for prefix, error_format in self.sides:
            if path == prefix or path.startswith(prefix + "/"):
                return error_format
        return self.default

    def render(self, path: str, status: int, code: str, message: str) -> tuple[bytes, bytes]:
        content_type, body = self.for_path(path)(status, code, message)
        return content_type.encode("latin-1"), body


async def send_error(
    send: Send,
    formats: ErrorFormats,
    *,
    path: str,
    status: int,
    code: str,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
    close: bool = True,
) -> None:
    """Answer with an error in the format of the side `path` belongs to."""
    content_type, body = formats.render(path, status, code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *([(b"connection", b"close")] if close else []),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
