"""JSON request bodies read as RFC 8259 texts, so every unreadable one is a 422.

FastAPI answers a body that `json.loads` rejects with a 422 (`json_invalid`), but any
other failure while parsing with a bare 400: bytes that are not UTF-8, nesting deeper than
Python's recursion limit, an integer longer than Python converts. Those are malformed JSON
too, and get the same 422 here. Non-UTF-8 encodings (UTF-16, UTF-32), which `json.loads`
guesses from the bytes, are refused: JSON between systems is UTF-8 (RFC 8259, section 8.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


def parse_json(body: bytes) -> Any:
    """The value of a JSON text; any reason it cannot be read is a `JSONDecodeError`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        lossy = body.decode("utf-8", errors="replace")
        raise json.JSONDecodeError("The body is not UTF-8", lossy, exc.start) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer longer than Python's digit limit
        raise json.JSONDecodeError("The body holds a number too long", text, 0) from exc
    except RecursionError as exc:
        raise json.JSONDecodeError("The body is nested too deeply", text, 0) from exc


class JSONBodyRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JSONBodyRoute(APIRoute):
    """A route that reads its JSON body with `parse_json` (FastAPI's custom route class hook)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(JSONBodyRequest(request.scope, request.receive))

        return route_handler
