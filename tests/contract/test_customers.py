"""Customers, on both stacks."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from shop_core.models import Customer
from tests.support import Stack, assert_error


def _message(stack: Stack, body: dict[str, Any]) -> str:
    """An error's words: legacy's `message`, v2's `detail`. A taken email's conflict names
    the address sent, which the general answer to a refused change cannot."""
    message = body["error"]["message"] if stack.name == "legacy" else body["detail"]
    assert isinstance(message, str)
    return message


def test_create_defaults_to_standard_tier(stack: Stack, unique: str) -> None:
    email = f"new-{unique.lower()}@example.com"
    answer = stack.post("/customers", json={"name": "New", "email": email}, user="clerk")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert list(body) == ["id", "name", "email", "tier", "created_at", "updated_at"]
    assert (body["name"], body["email"], body["tier"]) == ("New", email, "standard")
    assert answer.headers["Location"] == f"{stack.prefix}/customers/{body['id']}"


def test_customers_need_read_to_see_and_write_to_change(stack: Stack, unique: str) -> None:
    assert_error(stack, stack.get("/customers"), 401)
    assert stack.get("/customers", user="viewer").status_code == 200
    body = {"name": "x", "email": f"x-{unique.lower()}@example.com"}
    assert_error(stack, stack.post("/customers", json=body, user="viewer"), 403)
    customer = stack.create_customer(unique)
    assert_error(stack, stack.get(f"/customers/{customer['id']}"), 401)
    assert stack.get(f"/customers/{customer['id']}", user="viewer").json() == customer


def test_email_is_unique_case_insensitively(stack: Stack, unique: str, db: Engine) -> None:
    stack.create_customer(unique, email=f"Dup-{unique}@Example.com")
    clash = {"name": "Other", "email": f"dup-{unique.lower()}@example.COM"}
    body = assert_error(stack, stack.post("/customers", json=clash, user="clerk"), 409)
    assert clash["email"] in _message(stack, body)
    with db.connect() as conn:
        count = conn.scalar(
            select(func.count())
            .select_from(Customer)
            .where(func.lower(Customer.email) == f"dup-{unique.lower()}@example.com")
        )
    assert count == 1


@pytest.mark.parametrize(
    "field",
    [{"email": "not-an-email"}, {"email": ""}, {"name": ""}, {"tier": "diamond"}, {"name": 5}],
)
def test_invalid_customers_are_rejected(
    stack: Stack, unique: str, field: dict[str, object]
) -> None:
    body = {"name": "Valid", "email": f"v-{unique.lower()}@example.com"} | field
    assert_error(stack, stack.post("/customers", json=body, user="clerk"), stack.invalid_status)


def test_put_replaces_and_keeps_email_unique(stack: Stack, unique: str) -> None:
    customer = stack.create_customer(unique)
    other = stack.create_customer(unique + "B")
    replacement = {"name": "Renamed", "email": f"r-{unique.lower()}@example.com", "tier": "gold"}
    answer = stack.put(f"/customers/{customer['id']}", json=replacement, user="clerk")
    assert answer.status_code == 200, answer.text
    assert {k: answer.json()[k] for k in replacement} == replacement
    clash = replacement | {"email": other["email"].upper()}
    answer = stack.put(f"/customers/{customer['id']}", json=clash, user="clerk")
    assert clash["email"] in _message(stack, assert_error(stack, answer, 409))
    assert_error(stack, stack.put("/customers/999999999", json=replacement, user="clerk"), 404)


def test_patch_customer_is_v2_only(legacy: Stack, v2: Stack, unique: str) -> None:
    customer = v2.create_customer(unique)
    answer = v2.patch(f"/customers/{customer['id']}", json={"tier": "platinum"}, user="clerk")
    assert answer.status_code == 200, answer.text
    assert answer.json()["tier"] == "platinum"
    assert answer.json()["email"] == customer["email"]
    assert_error(legacy, legacy.patch(f"/customers/{customer['id']}", json={}, user="clerk"), 405)


def test_delete_customer_and_409_with_orders(stack: Stack, unique: str) -> None:
    lone = stack.create_customer(unique)
    assert stack.delete(f"/customers/{lone['id']}", user="clerk").status_code == 204
    assert_error(stack, stack.get(f"/customers/{lone['id']}", user="clerk"), 404)
    buyer = stack.create_customer(unique + "B")
    product = stack.create_product(unique)
    assert stack.place_order(buyer["id"], (product["id"], 1)).status_code == 201
    assert_error(stack, stack.delete(f"/customers/{buyer['id']}", user="clerk"), 409)
    assert stack.get(f"/customers/{buyer['id']}", user="clerk").status_code == 200
