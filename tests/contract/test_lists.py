"""Lists: filters, ordering and windows on each stack's paging."""

from __future__ import annotations

import pytest

from gateway.background_server import BackgroundServer
from tests.support import Stack, assert_error


def test_product_search_matches_name_or_sku_case_insensitively(stack: Stack, unique: str) -> None:
    by_name = stack.create_product(unique, name=f"Walnut {unique} tray")
    by_sku = stack.create_product(unique + "Z", name="Other")
    stack.create_product(unique[::-1] + "Q", name="Unrelated")
    body = stack.window("/products", offset=0, limit=10, q=unique.lower())
    assert body["total"] == 2
    assert [p["id"] for p in stack.items(body, "products")] == [by_name["id"], by_sku["id"]]


def test_like_wildcards_in_the_search_are_literal(stack: Stack) -> None:
    body = stack.window("/products", offset=0, limit=10, q="%")
    assert body["total"] == 0


def test_customer_filter_by_email_is_exact_and_case_insensitive(stack: Stack, unique: str) -> None:
    customer = stack.create_customer(unique, email=f"Find-{unique}@Example.com")
    stack.create_customer(unique + "X", email=f"find-{unique.lower()}x@example.com")
    body = stack.window(
        "/customers", offset=0, limit=10, user="viewer", email=f"find-{unique.lower()}@example.com"
    )
    assert [c["id"] for c in stack.items(body, "customers")] == [customer["id"]]


def test_order_filter_by_customer(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique)
    buyer = stack.create_customer(unique)
    other = stack.create_customer(unique + "O")
    first = stack.place_order(buyer["id"], (product["id"], 1)).json()
    stack.place_order(other["id"], (product["id"], 1))
    second = stack.place_order(buyer["id"], (product["id"], 2)).json()
    body = stack.window("/orders", offset=0, limit=10, user="viewer", customer_id=buyer["id"])
    assert stack.items(body, "orders") == [first, second]
    assert body["total"] == 2


def test_paging_metadata(legacy: Stack, v2: Stack) -> None:
    legacy_body = legacy.get("/products", params={"page": 2, "per_page": 5}).json()
    assert set(legacy_body) == {"products", "page", "per_page", "total"}
    assert (legacy_body["page"], legacy_body["per_page"]) == (2, 5)
    v2_body = v2.get("/products", params={"offset": 5, "limit": 5}).json()
    assert set(v2_body) == {"items", "total", "limit", "offset"}
    assert (v2_body["offset"], v2_body["limit"]) == (5, 5)
    assert legacy_body["total"] == v2_body["total"]
    defaults = legacy.get("/products").json()
    assert (defaults["page"], defaults["per_page"]) == (1, 20)
    assert (v2.get("/products").json()["limit"], v2.get("/products").json()["offset"]) == (20, 0)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("legacy", {"per_page": 101}),
        ("legacy", {"per_page": 0}),
        ("legacy", {"page": 0}),
        ("legacy", {"page": "two"}),
        ("v2", {"limit": 101}),
        ("v2", {"limit": 0}),
        ("v2", {"offset": -1}),
        ("v2", {"offset": "two"}),
    ],
)
def test_out_of_range_paging_is_rejected(
    gateway: BackgroundServer, tokens: dict[str, str], name: str, params: dict[str, object]
) -> None:
    stack = Stack(name, gateway.url, tokens)
    assert_error(stack, stack.get("/products", params=params), stack.invalid_status)
