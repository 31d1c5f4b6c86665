"""JSON bodies that cannot be read are invalid input (422), like any other malformed JSON."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, func, select

from shop_core.models import Customer
from tests.support import Stack, assert_error

UNREADABLE = {
    "not UTF-8": b'{"name": "\xff", "email": "latin1@example.com"}',
    "UTF-16": json.dumps({"name": "Wide", "email": "utf16@example.com"}).encode("utf-16"),
    "nested too deeply": b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "integer too long": b'{"name": "Long", "email": "long@example.com", "tier": 1'
    + b"0" * 5000
    + b"}",
}


@pytest.mark.parametrize("body", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_json_is_422_and_changes_nothing(v2: Stack, db: Engine, body: bytes) -> None:
    with db.connect() as conn:
        before = conn.scalar(select(func.count()).select_from(Customer))
    answer = v2.post(
        "/customers", data=body, headers={"Content-Type": "application/json"}, user="clerk"
    )
    problem = assert_error(v2, answer, 422)
    assert [error["type"] for error in problem["errors"]] == ["json_invalid"]
    with db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Customer)) == before
