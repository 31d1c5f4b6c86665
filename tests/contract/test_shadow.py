"""The shop's paired GET routes in `shadow`: Flask answers, v2 answers the same request
afterwards through the adapter, and the two answers are compared (gateway/ledger/shadow.py).

Real traffic on every paired GET route gives 100 % matched answers; the client's answer is
byte for byte the legacy app's; writes are never run twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from gateway.ledger.memory import MemoryStatuses
from gateway.ledger.model import RouteState, RouteStatus
from gateway.ledger.shadow import Counts, Shadow
from shop.app import build_pair
from shop.settings import ShopSettings
from tests.support import Stack, wait_for

# Headers that differ between any two answers, whoever serves them.
PER_ANSWER = frozenset({"x-request-id", "date"})


@dataclass
class Shadowed:
    server: BackgroundServer
    statuses: MemoryStatuses
    shadow: Shadow
    paired_reads: tuple[str, ...]


@pytest.fixture(scope="module")
def shadowed(settings: ShopSettings) -> Iterator[Shadowed]:
    pair = build_pair(settings)
    assert pair.ledger is not None
    reads = tuple(
        route.id
        for route in pair.ledger.routes
        if route.adapter is not None and route.legacy_method == "GET"
    )
    statuses = MemoryStatuses(
        pair.ledger, {route: RouteStatus(RouteState.SHADOW) for route in reads}
    )
    # Room for every request of a test at once: nothing here may be dropped.
    gateway_settings = settings.model_copy(update={"shadow_max_concurrency": 64})
    app = create_gateway(gateway_settings, pair, statuses=statuses)
    with BackgroundServer(app, settings=gateway_settings) as server:
        yield Shadowed(server, statuses, app.state.shadow, reads)


@pytest.fixture
def client(shadowed: Shadowed, tokens: dict[str, str]) -> Stack:
    return Stack("legacy", shadowed.server.url, tokens)


def _counts(shadowed: Shadowed) -> dict[str, Counts]:
    return {route: shadowed.shadow.results.counts(route) for route in shadowed.paired_reads}


def _settled(
    shadowed: Shadowed, before: dict[str, Counts], sent: dict[str, int]
) -> dict[str, Counts]:
    """Once every shadow call of the requests sent has ended: what each route counted since."""

    def grown() -> dict[str, Counts] | None:
        now = _counts(shadowed)
        since = {
            route: Counts(
                matched=now[route].matched - before[route].matched,
                mismatched=now[route].mismatched - before[route].mismatched,
                errored=now[route].errored - before[route].errored,
                dropped=now[route].dropped - before[route].dropped,
            )
            for route in now
        }
        done = all(
            since[route].compared + since[route].errored + since[route].dropped
            >= sent.get(route, 0)
            for route in since
        )
        return since if done and shadowed.shadow.in_flight == 0 else None

    return wait_for(grown, "every shadow call ended")


def test_every_paired_read_matches_on_real_traffic(
    client: Stack, shadowed: Shadowed, unique: str
) -> None:
    assert set(shadowed.paired_reads) == {
        "products.list",
        "products.read",
        "customers.list",
        "customers.read",
        "orders.list",
        "orders.read",
        "shipping.quote",
    }
    product = client.create_product(unique, name="Caf\u00e9 cr\u00e8me")
    customer = client.create_customer(unique)
    placed = client.place_order(customer["id"], (product["id"], 2))
    assert placed.status_code == 201, placed.text
    order = placed.json()
    before = _counts(shadowed)
    requests_sent = {
        "products.list": [
            ("GET", "/products", None),
            ("GET", "/products?page=2&per_page=5", None),
            ("GET", f"/products?q={unique}", None),
            ("GET", "/products?per_page=1000", None),
            ("GET", "/products?page=x", None),
            ("HEAD", "/products", None),
        ],
        "products.read": [
            ("GET", f"/products/{product['id']}", None),
            ("GET", "/products/999999999", None),
            ("HEAD", f"/products/{product['id']}", None),
        ],
        "customers.list": [
            ("GET", "/customers", "viewer"),
            ("GET", f"/customers?email={customer['email'].upper()}", "viewer"),
            ("GET", "/customers", None),
        ],
        "customers.read": [
            ("GET", f"/customers/{customer['id']}", "viewer"),
            ("GET", "/customers/999999999", "viewer"),
            ("GET", f"/customers/{customer['id']}", None),
        ],
        "orders.list": [
            ("GET", "/orders", "viewer"),
            ("GET", f"/orders?customer_id={customer['id']}", "viewer"),
            ("GET", "/orders?customer_id=abc", "viewer"),
        ],
        "orders.read": [
            ("GET", f"/orders/{order['id']}", "viewer"),
            ("GET", "/orders/999999999", "viewer"),
        ],
        "shipping.quote": [
            ("GET", f"/shipping/quote?order_id={order['id']}", "viewer"),
            ("GET", "/shipping/quote?order_id=999999999", "viewer"),
            ("GET", "/shipping/quote", "viewer"),
        ],
    }
    for calls in requests_sent.values():
        for method, path, user in calls:
            answer = client.request(method, path, user=user)
            assert answer.status_code < 500, (path, answer.text)
    sent = {route: len(calls) for route, calls in requests_sent.items()}
    since = _settled(shadowed, before, sent)
    mismatches = {
        route: [m.differences for m in shadowed.shadow.results.mismatches(route)]
        for route in since
        if since[route].mismatched
    }
    assert mismatches == {}
    assert {route: (c.matched, c.errored, c.dropped) for route, c in since.items()} == {
        route: (count, 0, 0) for route, count in sent.items()
    }


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_client_gets_the_legacy_answer_byte_for_byte(
    client: Stack, shadowed: Shadowed, unique: str, method: str
) -> None:
    product = client.create_product(unique)
    path = f"/products/{product['id']}"
    asyncio.run(shadowed.statuses.change("products.read", RouteStatus(), actor="test", reason="t"))
    try:
        legacy = client.request(method, path)
    finally:
        asyncio.run(
            shadowed.statuses.change(
                "products.read", RouteStatus(RouteState.SHADOW), actor="test", reason="t"
            )
        )
    before = _counts(shadowed)
    shadow = client.request(method, path)
    _settled(shadowed, before, {"products.read": 1})
    assert shadow.status_code == legacy.status_code == 200
    assert shadow.content == legacy.content
    assert {k: v for k, v in shadow.headers.items() if k.lower() not in PER_ANSWER} == {
        k: v for k, v in legacy.headers.items() if k.lower() not in PER_ANSWER
    }


def test_writes_are_never_shadowed(client: Stack, shadowed: Shadowed, unique: str) -> None:
    asyncio.run(
        shadowed.statuses.change(
            "products.create", RouteStatus(RouteState.SHADOW), actor="test", reason="t"
        )
    )
    try:
        total = client.get("/products").json()["total"]
        created = client.post(
            "/products",
            json={"sku": f"W-{unique}", "name": "Once", "price": "1.00", "stock": 1},
            user="admin",
        )
        assert created.status_code == 201, created.text
        # The write ran once: one row more, and the shadow never saw it.
        assert client.get("/products").json()["total"] == total + 1
        assert shadowed.shadow.results.counts("products.create") == Counts()
        duplicate = client.post(
            "/products",
            json={"sku": f"W-{unique}", "name": "Twice", "price": "1.00", "stock": 1},
            user="admin",
        )
        assert duplicate.status_code == 409
    finally:
        asyncio.run(
            shadowed.statuses.change("products.create", RouteStatus(), actor="test", reason="t")
        )
    listed = requests.get(
        f"{shadowed.server.url}/legacy/products", params={"q": f"W-{unique}"}, timeout=10
    )
    assert listed.json()["total"] == 1
