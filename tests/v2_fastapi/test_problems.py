"""v2's error answers: what a 405 allows, and values the database cannot take."""

from __future__ import annotations

import pytest

from tests.support import Stack, assert_error


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/products", {"GET", "POST"}),
        ("POST", "/products/1", {"GET", "PUT", "PATCH", "DELETE"}),
        ("OPTIONS", "/customers/1", {"GET", "PUT", "PATCH", "DELETE"}),
    ],
)
def test_405_allows_every_method_of_the_path(
    v2: Stack, method: str, path: str, allowed: set[str]
) -> None:
    answer = v2.request(method, path, user="admin")
    assert_error(v2, answer, 405)
    assert {m.strip() for m in answer.headers["Allow"].split(",")} == allowed


def test_a_value_the_database_cannot_store_is_refused_not_a_500(v2: Stack) -> None:
    # PostgreSQL text cannot hold NUL; SQLite can, and finds no such user.
    answer = v2.login("ad\x00min", "demo")
    assert answer.status_code in {401, 422}, answer.text
    assert_error(v2, answer, answer.status_code)
