"""Two front doors to the same rows: what one stack writes, the other reads, identically.

They hold whoever serves the legacy door: Flask for every route, v2 for every paired route,
and the mixed combinations (reads on v2 with writes on Flask, and the reverse), where one
test's legacy calls cross from one implementation to the other.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from shop_core.models import Product
from tests.contract.combinations import COMBINATIONS, legacy_client
from tests.support import DEMO_PASSWORD, Stack


@pytest.fixture(params=["legacy", *COMBINATIONS])
def legacy(request: pytest.FixtureRequest, tokens: dict[str, str]) -> Stack:
    """The legacy door in every combination of states that changes who serves it."""
    return legacy_client(request, request.param, tokens)


def test_an_order_placed_on_v2_shows_on_legacy_with_stock_taken(
    legacy: Stack, v2: Stack, unique: str, db: Engine
) -> None:
    product = legacy.create_product(unique, stock=10)
    customer = legacy.create_customer(unique)
    order = v2.place_order(customer["id"], (product["id"], 3)).json()
    assert legacy.get(f"/orders/{order['id']}", user="viewer").json() == order
    assert legacy.get(f"/products/{product['id']}").json()["stock"] == 7
    cancelled = legacy.post(f"/orders/{order['id']}/cancel", user="clerk").json()
    assert v2.get(f"/orders/{order['id']}", user="viewer").json() == cancelled
    with db.connect() as conn:
        assert conn.scalar(select(Product.stock).where(Product.id == product["id"])) == 10


def test_the_same_resource_is_the_same_json_on_both(legacy: Stack, v2: Stack, unique: str) -> None:
    product = v2.create_product(unique, price="3.10")
    customer = legacy.create_customer(unique, tier="gold")
    order = legacy.place_order(customer["id"], (product["id"], 2)).json()
    for path in (
        f"/products/{product['id']}",
        f"/customers/{customer['id']}",
        f"/orders/{order['id']}",
    ):
        from_legacy = legacy.get(path, user="viewer")
        from_v2 = v2.get(path, user="viewer")
        assert from_legacy.status_code == from_v2.status_code == 200
        assert from_legacy.json() == from_v2.json()
        assert list(from_legacy.json()) == list(from_v2.json())


def test_a_token_from_either_stack_works_on_the_other(legacy: Stack, v2: Stack) -> None:
    for issuer, consumer in ((legacy, v2), (v2, legacy)):
        token = issuer.login("viewer", DEMO_PASSWORD).json()["access_token"]
        answer = consumer.get("/customers", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text


def test_the_same_window_holds_the_same_items(legacy: Stack, v2: Stack, unique: str) -> None:
    for n in range(12):
        legacy.create_product(f"{unique}{n:02d}", name=f"Window {unique} {n}")
    for resource, user, params in (
        ("products", None, {"q": unique}),
        ("customers", "viewer", {}),
        ("orders", "viewer", {}),
    ):
        for offset, limit in ((0, 10), (10, 10), (4, 2)):
            old = legacy.window(f"/{resource}", offset=offset, limit=limit, user=user, **params)
            new = v2.window(f"/{resource}", offset=offset, limit=limit, user=user, **params)
            assert old["total"] == new["total"]
            assert legacy.items(old, resource) == v2.items(new, resource)
