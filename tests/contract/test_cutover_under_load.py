"""Switching routes between states under load loses no request and half-writes nothing.

A real gateway (its statuses in a control database of its own, changed through its admin
API as an operator would) takes orders through both doors from several threads at once,
each on a kept-alive connection, and reads them back, while `orders.place`, `orders.read`
and `products.read` flip between `legacy` and `v2` over and over. Every answer must be the
contract's (201 with the door's `Location`, the order as placed; 200 reads), none a 5xx or
a dropped connection; afterwards the rows add up: the stock taken is the sum of the
accepted orders' quantities, and every order has all its items.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select

from gateway.background_server import BackgroundServer
from shop.app import create_app
from shop.settings import ShopSettings
from shop_core.models import Order, OrderItem, Product
from tests.gateway.control_database import ADMIN_TOKEN, own_statuses
from tests.support import Stack, wait_for

TOKEN = ADMIN_TOKEN
FLIPPED = ("orders.place", "orders.read", "products.read")
# Each state is kept until the legacy door's clients had this many orders served in it.
ANSWERS_PER_STATE = 3
FLIPS = 16
CLIENTS_PER_DOOR = 3
ORDER_KEYS = {"id", "customer_id", "status", "items", "total", "created_at"}


@pytest.fixture
def flippable(
    settings: ShopSettings, database_url: str, tmp_path: Path
) -> Iterator[BackgroundServer]:
    """A gateway over the session's rows whose statuses are its own: the session's other
    gateways keep serving every route from Flask meanwhile."""
    with (
        own_statuses(settings, database_url, tmp_path) as own,
        BackgroundServer(create_app(own), settings=own) as server,
    ):
        yield server


@dataclass
class Load:
    """What the clients saw, shared by their threads."""

    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Orders placed and read back, by door.
    answered: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    # order id -> {product id: quantity}, for every 201.
    accepted: dict[int, dict[int, int]] = field(default_factory=dict)

    def count(self, door: str) -> None:
        with self.lock:
            self.answered[door] += 1

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def _place_and_read(
    load: Load, stack: Stack, user: str, customer_id: int, product_ids: list[int], seed: int
) -> None:
    """One client: place an order, read it and a product back, until told to stop."""
    rng = random.Random(seed)
    http = requests.Session()
    auth = {"Authorization": f"Bearer {stack.tokens[user]}"}
    while not load.stop.is_set():
        items = {pid: rng.randint(1, 3) for pid in rng.sample(product_ids, k=rng.randint(1, 3))}
        body = {
            "customer_id": customer_id,
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in items.items()],
        }
        try:
            placed = http.post(f"{stack.url}/orders", json=body, headers=auth, timeout=30)
        except requests.RequestException as exc:
            load.problem(f"{stack.name} POST /orders: {exc!r}")
            continue
        order = placed.json() if placed.status_code == 201 else {}
        if placed.status_code != 201 or set(order) != ORDER_KEYS:
            load.problem(f"{stack.name} POST /orders: {placed.status_code} {placed.text[:200]}")
            continue
        with load.lock:
            load.accepted[order["id"]] = items
        if (
            placed.headers.get("Location") != f"{stack.prefix}/orders/{order['id']}"
            or placed.headers.get("Content-Type") != "application/json"
            or {item["product_id"]: item["quantity"] for item in order["items"]} != items
        ):
            load.problem(f"{stack.name} POST /orders: not as placed: {placed.headers} {order}")
        for path, expected in (
            (f"/orders/{order['id']}", order),
            (f"/products/{rng.choice(product_ids)}", None),
        ):
            try:
                read = http.get(stack.url + path, headers=auth, timeout=30)
            except requests.RequestException as exc:
                load.problem(f"{stack.name} GET {path}: {exc!r}")
                continue
            if read.status_code != 200 or (expected is not None and read.json() != expected):
                load.problem(f"{stack.name} GET {path}: {read.status_code} {read.text[:200]}")
        load.count(stack.name)


def _flip(base_url: str, load: Load) -> list[str]:
    """Move the routes to v2 and back `FLIPS` times through the admin API, each state kept
    until the legacy door's clients had answers in it; the states set, in order."""
    states = []
    with requests.Session() as admin:
        for flip in range(FLIPS):
            state = "v2" if flip % 2 == 0 else "legacy"
            for route_id in FLIPPED:
                answer = admin.patch(
                    f"{base_url}/_gateway/routes/{route_id}",
                    json={"state": state, "reason": f"flip {flip} under load"},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=30,
                )
                assert answer.status_code == 200, answer.text
            states.append(state)
            seen = load.answered["legacy"]
            wait_for(
                lambda seen=seen: (
                    load.answered["legacy"] >= seen + ANSWERS_PER_STATE or load.problems
                ),
                f"answers in state {state}",
                timeout_s=60,
            )
    return states


def _served_by(base_url: str) -> Counter[str]:
    """Legacy-door answers of POST /orders the gateway counted, by who served them."""
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(
        requests.get(f"{base_url}/metrics", timeout=10).text
    ):
        for sample in family.samples:
            labels = sample.labels
            wanted = {"stack": "legacy", "method": "POST", "route": "/orders"}
            if sample.name == "gateway_requests_total" and wanted.items() <= labels.items():
                counts[labels["served_by"]] += int(sample.value)
    return counts


@dataclass(frozen=True)
class Rows:
    stocks: dict[int, int]
    orders: set[int]
    # order id -> {product id: quantity}, as written.
    items: dict[int, dict[int, int]]


def _rows(db: Engine, customer_id: int, product_ids: list[int]) -> Rows:
    with db.connect() as conn:
        found = conn.execute(select(Product.id, Product.stock).where(Product.id.in_(product_ids)))
        stocks = {product_id: stock for product_id, stock in found}
        orders = set(conn.scalars(select(Order.id).where(Order.customer_id == customer_id)))
        lines = conn.execute(
            select(OrderItem.order_id, OrderItem.product_id, OrderItem.quantity)
            .join(Order)
            .where(Order.customer_id == customer_id)
        ).all()
    written: dict[int, dict[int, int]] = {}
    for order_id, product_id, quantity in lines:
        written.setdefault(order_id, {})[product_id] = quantity
    return Rows(stocks=stocks, orders=orders, items=written)


def test_flipping_routes_under_load_loses_nothing_and_half_writes_nothing(
    flippable: BackgroundServer, tokens: dict[str, str], db: Engine, unique: str
) -> None:
    legacy, v2 = Stack("legacy", flippable.url, tokens), Stack("v2", flippable.url, tokens)
    product_ids = [
        legacy.create_product(f"{unique}{index}", stock=100_000)["id"] for index in range(4)
    ]
    customer_id = v2.create_customer(unique)["id"]
    before = _rows(db, customer_id, product_ids).stocks
    counted = _served_by(flippable.url)
    load = Load()
    clients = [
        (stack, user, index)
        for index in range(CLIENTS_PER_DOOR)
        for stack, user in ((legacy, "clerk"), (v2, "admin"))
    ]

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        running = [
            pool.submit(_place_and_read, load, stack, user, customer_id, product_ids, seed)
            for stack, user, seed in clients
        ]
        try:
            states = _flip(flippable.url, load)
        finally:
            load.stop.set()
        for client in running:
            client.result()

    assert not load.problems, "\n".join(load.problems[:20])
    assert states[-1] == "legacy" and len(states) == FLIPS
    # Both implementations served the legacy door's orders while they flipped.
    served = _served_by(flippable.url) - counted
    assert served["legacy"] > 0 and served["v2"] > 0, served
    history = requests.get(
        f"{flippable.url}/_gateway/routes/orders.place/history",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()["changes"]
    assert len(history) == FLIPS

    rows = _rows(db, customer_id, product_ids)
    taken: Counter[int] = Counter()
    for items in load.accepted.values():
        taken.update(items)
    assert rows.stocks == {pid: before[pid] - taken[pid] for pid in product_ids}
    assert rows.orders == set(load.accepted)
    assert rows.items == load.accepted
