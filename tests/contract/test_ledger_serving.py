"""Serving legacy routes by the ledger: each state, the announcement, and who answered.

One gateway over the session's database, with its route statuses in memory; each test
sets the states it needs and they are set back to `legacy` after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from gateway.ledger.memory import MemoryStatuses
from gateway.ledger.model import RouteState, RouteStatus, StatusRefused
from gateway.observability.logs import access_log
from shop.app import build_pair
from shop.settings import ShopSettings
from tests.support import Stack, assert_error

DEPRECATION = datetime(2026, 1, 1, tzinfo=UTC)
SUNSET = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def served(settings: ShopSettings) -> Iterator[tuple[BackgroundServer, MemoryStatuses]]:
    pair = build_pair(settings)
    assert pair.ledger is not None
    statuses = MemoryStatuses(pair.ledger)
    with BackgroundServer(create_gateway(settings, pair, statuses=statuses)) as server:
        yield server, statuses


@pytest.fixture
def statuses(served: tuple[BackgroundServer, MemoryStatuses]) -> Iterator[MemoryStatuses]:
    store = served[1]
    yield store
    for route in store.ledger.routes:
        if store.current(route.id) != RouteStatus():
            asyncio.run(store.change(route.id, RouteStatus(), actor="test", reason="reset"))


@pytest.fixture
def client(served: tuple[BackgroundServer, MemoryStatuses], tokens: dict[str, str]) -> Stack:
    return Stack("legacy", served[0].url, tokens)


def set_status(
    store: MemoryStatuses,
    route_id: str,
    state: RouteState = RouteState.LEGACY,
    deprecation: datetime | None = None,
    sunset: datetime | None = None,
) -> None:
    after = RouteStatus(state=state, deprecation=deprecation, sunset=sunset)
    asyncio.run(store.change(route_id, after, actor="test", reason="test"))


def served_by(
    server_url: str, route: str, status: str, method: str | None = None
) -> dict[str, float]:
    """Legacy answers of `route` with `status` the gateway counted, by who served them."""
    text = requests.get(f"{server_url}/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            wanted = {"stack": "legacy", "route": route, "status": status}
            if method is not None:
                wanted["method"] = method
            if sample.name == "gateway_requests_total" and wanted.items() <= labels.items():
                counts[labels["served_by"]] = counts.get(labels["served_by"], 0) + sample.value
    return counts


def test_v2_serves_the_legacy_url_in_the_legacy_contract(
    client: Stack, statuses: MemoryStatuses, unique: str
) -> None:
    product = client.create_product(unique)
    before = client.get(f"/products/{product['id']}")
    set_status(statuses, "products.read", state=RouteState.V2)
    counted = served_by(client.url.removesuffix("/legacy"), "/products/{product_id}", "200")
    after = client.get(f"/products/{product['id']}")
    assert (after.status_code, after.json()) == (200, before.json())
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.headers["Content-Type"] == "application/json"
    again = client.get(
        f"/products/{product['id']}", headers={"If-None-Match": after.headers["ETag"]}
    )
    assert again.status_code == 304
    now = served_by(client.url.removesuffix("/legacy"), "/products/{product_id}", "200")
    assert now.get("v2", 0) == counted.get("v2", 0) + 1
    assert now.get("legacy") == counted.get("legacy")
    assert_error(client, client.get("/products/999999999"), 404)


@pytest.mark.parametrize("state", [RouteState.LEGACY, RouteState.V2])
def test_head_of_a_read_is_served_as_its_get_without_the_body(
    client: Stack, statuses: MemoryStatuses, unique: str, state: RouteState
) -> None:
    product = client.create_product(unique)
    path = f"/products/{product['id']}"
    set_status(statuses, "products.read", state=state)
    base = client.url.removesuffix("/legacy")
    counted = served_by(base, "/products/{product_id}", "200", method="HEAD")
    get = client.get(path)
    head = client.request("HEAD", path)
    assert (head.status_code, head.content) == (200, b"")
    for header in ("Content-Type", "Content-Length", "ETag"):
        assert head.headers[header] == get.headers[header], header
    now = served_by(base, "/products/{product_id}", "200", method="HEAD")
    assert now.get(state.value, 0) == counted.get(state.value, 0) + 1
    missing = client.request("HEAD", "/products/999999999")
    assert (missing.status_code, missing.content) == (404, b"")
    set_status(statuses, "products.read", state=RouteState.RETIRED)
    retired = client.request("HEAD", path)
    assert (retired.status_code, retired.content) == (410, b"")
    assert retired.headers["Link"] == f'</v2{path}>; rel="successor-version"'


def test_a_v2_served_write_answers_as_legacy_did(
    client: Stack, statuses: MemoryStatuses, unique: str
) -> None:
    set_status(statuses, "products.create", state=RouteState.V2)
    body = {"sku": f"L-{unique}", "name": "Lamp", "price": 12.5, "stock": 3, "colour": "red"}
    answer = client.post("/products", json=body, user="admin")
    assert answer.status_code == 201, answer.text
    assert answer.json()["price"] == "12.50"
    assert answer.headers["Location"] == f"/legacy/products/{answer.json()['id']}"
    invalid = client.post("/products", json={"sku": "lower", "price": "x"}, user="admin")
    error = assert_error(client, invalid, 400)["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"sku", "name", "price", "stock"}


def test_a_retired_route_answers_410_with_its_successor(
    client: Stack, statuses: MemoryStatuses, unique: str
) -> None:
    product = client.create_product(unique)
    set_status(statuses, "products.read", state=RouteState.RETIRED)
    base = client.url.removesuffix("/legacy")
    counted = served_by(base, "/products/{product_id}", "410")
    answer = client.get(f"/products/{product['id']}")
    error = assert_error(client, answer, 410)["error"]
    # Neither app answered: the gateway did, and its metrics say so.
    now = served_by(base, "/products/{product_id}", "410")
    assert now == {**counted, "gateway": counted.get("gateway", 0) + 1}
    successor = f"/v2/products/{product['id']}"
    assert error == {
        "code": "gone",
        "message": f"This route is retired. Its successor is {successor}.",
    }
    assert answer.headers["Link"] == f'<{successor}>; rel="successor-version"'
    # An answer like any other: the connection stays open.
    assert answer.headers.get("Connection") != "close"
    # Another route is not touched.
    assert client.get("/products").status_code == 200


@pytest.mark.parametrize("state", [RouteState.LEGACY, RouteState.V2, RouteState.RETIRED])
def test_an_announced_route_says_so_on_every_answer(
    client: Stack, statuses: MemoryStatuses, unique: str, state: RouteState
) -> None:
    product = client.create_product(unique)
    set_status(statuses, "products.read", state=state, deprecation=DEPRECATION, sunset=SUNSET)
    for path in (f"/products/{product['id']}", "/products/999999999"):
        answer = client.get(path)
        assert answer.headers["Deprecation"] == f"@{int(DEPRECATION.timestamp())}"
        assert answer.headers["Sunset"] == "Wed, 01 Jul 2026 12:30:00 GMT"
        successor = path.replace("/products", "/v2/products")
        assert answer.headers["Link"] == f'<{successor}>; rel="successor-version"'
    # The routes that are not announced say nothing.
    assert "Deprecation" not in client.get("/products").headers


@pytest.mark.parametrize("announced", ["deprecation", "sunset"])
def test_a_deprecation_or_a_sunset_alone_is_announced_alone(
    client: Stack, statuses: MemoryStatuses, unique: str, announced: str
) -> None:
    product = client.create_product(unique)
    dates = {"deprecation": DEPRECATION, "sunset": SUNSET}
    set_status(statuses, "products.read", **{announced: dates[announced]})
    answer = client.get(f"/products/{product['id']}")
    expected = {
        "deprecation": {"Deprecation": f"@{int(DEPRECATION.timestamp())}"},
        "sunset": {"Sunset": "Wed, 01 Jul 2026 12:30:00 GMT"},
    }[announced]
    assert {name: answer.headers.get(name) for name in ("Deprecation", "Sunset")} == {
        "Deprecation": None,
        "Sunset": None,
    } | expected
    assert answer.headers["Link"] == f'</v2/products/{product["id"]}>; rel="successor-version"'


def test_states_that_cannot_serve_the_route_are_refused(statuses: MemoryStatuses) -> None:
    with pytest.raises(StatusRefused, match="no adapter"):
        set_status(statuses, "health", state=RouteState.V2)
    with pytest.raises(StatusRefused, match="no adapter"):
        set_status(statuses, "health", state=RouteState.CANARY)
    with pytest.raises(StatusRefused, match="sunset"):
        set_status(statuses, "products.read", deprecation=SUNSET, sunset=DEPRECATION)
    assert statuses.current("products.read") == RouteStatus()


def test_the_access_log_says_which_side_served(
    client: Stack, statuses: MemoryStatuses, caplog: pytest.LogCaptureFixture
) -> None:
    set_status(statuses, "products.list", state=RouteState.V2)
    with caplog.at_level(logging.INFO, logger=access_log.name):
        assert client.get("/products").status_code == 200
        assert client.get("/customers", user="viewer").status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == access_log.name]
    assert any(
        " legacy GET /products 200 " in line and line.endswith("served_by=v2") for line in lines
    )
    assert any(
        " legacy GET /customers 200 " in line and line.endswith("served_by=legacy")
        for line in lines
    )
