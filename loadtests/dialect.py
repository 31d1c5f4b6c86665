"""How clients speak to one side of an app pair: its prefix, login, paging, lists, errors.

A `Dialect` is plain data and imports no Locust (importing Locust patches the standard
library with gevent), so that the tests and the load tests of a pair read the same one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

# Keyword arguments for an HTTP client's request (Locust's and requests' alike).
RequestKwargs = dict[str, Any]
# (status, content type, body) -> None when it is an error in the dialect, else what is not.
ErrorCheck = Callable[[int, str, Any], str | None]


def json_login(username: str, password: str) -> RequestKwargs:
    return {"json": {"username": username, "password": password}}


def form_login(username: str, password: str) -> RequestKwargs:
    """An OAuth2 password form, encoded here so that every client sends the same bytes."""
    form = urlencode({"username": username, "password": password})
    return {"data": form, "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


def offset_limit(offset: int, limit: int) -> dict[str, int]:
    return {"offset": offset, "limit": limit}


def page_per_page(offset: int, limit: int) -> dict[str, int]:
    """Pages count from 1; a window must start on a page boundary."""
    if offset % limit:
        raise ValueError(f"offset {offset} is not on a page of {limit}")
    return {"page": offset // limit + 1, "per_page": limit}


def no_paging(offset: int, limit: int) -> dict[str, int]:
    return {}


def any_json_error(status: int, content_type: str, body: Any) -> str | None:
    return None if isinstance(body, dict) else f"not a JSON error: {str(body)[:200]}"


@dataclass(frozen=True)
class Dialect:
    """One side of a pair as its clients see it."""

    prefix: str
    # The request body of a login at `login_path`, or None: the side needs no login.
    login: Callable[[str, str], RequestKwargs] | None = None
    login_path: str = "/auth/token"
    # Query parameters of the list window [offset, offset + limit).
    window: Callable[[int, int], dict[str, int]] = no_paging
    # Where a list answer holds its list; "{resource}" is the resource's name.
    list_key: str = "{resource}"
    # Whether an error answer is well formed in this dialect.
    error_problem: ErrorCheck = any_json_error
    # The status of input that fails validation.
    invalid_status: int = 422

    def items(self, body: Mapping[str, Any], resource: str) -> list[dict[str, Any]]:
        """The list in a list answer (empty when there is none)."""
        found = body.get(self.list_key.format(resource=resource))
        return found if isinstance(found, list) else []
