"""Concurrency with nothing lost: many requests at once, through both stacks, over one database.

Every test fires all its requests together (a barrier releases them at once) at the real
gateway on a real port, half through /legacy and half through /v2, then checks the rows:
what was answered 201 is written whole, what was answered 409 changed nothing.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from sqlalchemy import Engine, func, select

from shop_core.models import Customer, Order, OrderItem, Product
from tests.support import Stack, assert_error

Call = Callable[[], requests.Response]


def _all_at_once(calls: list[Call]) -> list[requests.Response]:
    """Run every call in a thread of its own, released together; answers in call order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Call) -> requests.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _post(stack: Stack, path: str, body: dict[str, Any], user: str = "clerk") -> Call:
    # A connection per call: a shared requests.Session would queue them on its own pool.
    headers = {"Authorization": f"Bearer {stack.tokens[user]}"}
    return lambda: requests.post(stack.url + path, json=body, headers=headers, timeout=60)


def _stocks(db: Engine, product_ids: list[int]) -> dict[int, int]:
    with db.connect() as conn:
        rows = conn.execute(select(Product.id, Product.stock).where(Product.id.in_(product_ids)))
        return {pid: stock for pid, stock in rows}


def _cents(money: str) -> int:
    units, cents = money.split(".")
    return int(units) * 100 + int(cents)


def test_concurrent_orders_on_both_stacks_never_oversell(
    legacy: Stack, v2: Stack, db: Engine, unique: str
) -> None:
    products = [
        legacy.create_product(f"{unique}{index}", price=f"{index + 1}.25", stock=6)
        for index in range(4)
    ]
    product_ids = [product["id"] for product in products]
    customer = v2.create_customer(unique)
    before = _stocks(db, product_ids)
    rng = random.Random(unique)
    wanted: list[dict[int, int]] = []
    calls: list[Call] = []
    for index in range(80):
        chosen = rng.sample(product_ids, k=rng.randint(1, 3))
        items = {pid: rng.randint(1, 3) for pid in chosen}
        wanted.append(items)
        body = {
            "customer_id": customer["id"],
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in items.items()],
        }
        calls.append(_post(legacy if index % 2 == 0 else v2, "/orders", body))

    answers = _all_at_once(calls)

    taken: Counter[int] = Counter()
    accepted: dict[int, dict[str, Any]] = {}
    for index, answer in enumerate(answers):
        stack = legacy if index % 2 == 0 else v2
        assert answer.status_code in (201, 409), f"{stack.name}: {answer.status_code} {answer.text}"
        if answer.status_code == 409:
            assert_error(stack, answer, 409)
            continue
        order = answer.json()
        assert {item["product_id"]: item["quantity"] for item in order["items"]} == wanted[index]
        accepted[order["id"]] = order
        taken.update(wanted[index])
    rejected = len(answers) - len(accepted)
    # Far more is asked than there is: some orders must win and some must lose.
    assert accepted and rejected, (len(accepted), rejected)

    after = _stocks(db, product_ids)
    assert after == {pid: before[pid] - taken[pid] for pid in product_ids}
    assert all(stock >= 0 for stock in after.values())
    with db.connect() as conn:
        orders = conn.execute(
            select(Order.id, Order.total_cents).where(Order.customer_id == customer["id"])
        ).all()
        lines = conn.execute(
            select(OrderItem.order_id, OrderItem.product_id, OrderItem.quantity)
            .join(Order)
            .where(Order.customer_id == customer["id"])
        ).all()
    # Every 201 has its rows, and no 409 left one behind.
    assert {order_id for order_id, _ in orders} == set(accepted)
    for order_id, total_cents in orders:
        assert total_cents == _cents(accepted[order_id]["total"])
    written: dict[int, dict[int, int]] = {}
    for order_id, product_id, quantity in lines:
        written.setdefault(order_id, {})[product_id] = quantity
    assert written == {
        order_id: {item["product_id"]: item["quantity"] for item in order["items"]}
        for order_id, order in accepted.items()
    }


def test_concurrent_cancels_of_one_order_give_its_stock_back_once(
    legacy: Stack, v2: Stack, db: Engine, unique: str
) -> None:
    product = legacy.create_product(unique, stock=20)
    customer = legacy.create_customer(unique)
    order_ids = []
    for _ in range(4):
        answer = legacy.place_order(customer["id"], (product["id"], 2))
        assert answer.status_code == 201, answer.text
        order_ids.append(answer.json()["id"])
    assert _stocks(db, [product["id"]]) == {product["id"]: 12}
    # Ten cancels of each of the four orders, five through each stack, all at once.
    targets = [(order_ids[index % 4], legacy if index % 2 else v2) for index in range(40)]
    calls = [_post(stack, f"/orders/{oid}/cancel", {}) for oid, stack in targets]

    answers = _all_at_once(calls)

    statuses: dict[int, Counter[int]] = {oid: Counter() for oid in order_ids}
    for (oid, stack), answer in zip(targets, answers, strict=True):
        statuses[oid][answer.status_code] += 1
        if answer.status_code == 200:
            assert answer.json()["status"] == "cancelled"
        else:
            assert_error(stack, answer, 409)
    assert statuses == {oid: Counter({200: 1, 409: 9}) for oid in order_ids}
    assert _stocks(db, [product["id"]]) == {product["id"]: 20}
    with db.connect() as conn:
        states = set(conn.scalars(select(Order.status).where(Order.id.in_(order_ids))))
    assert states == {"cancelled"}


def test_concurrent_creates_of_one_email_make_one_customer(
    legacy: Stack, v2: Stack, db: Engine, unique: str
) -> None:
    emails = [f"race-{unique.lower()}-{index}@example.com" for index in range(3)]
    targets: list[tuple[str, Stack]] = []
    for email in emails:
        # The same address in twelve spellings: the unique index ignores case.
        mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(email))
        spellings = [email, email.upper(), email.title(), mixed]
        targets += [(spellings[i % 4], legacy if i % 2 else v2) for i in range(12)]
    calls = [
        _post(stack, "/customers", {"name": f"Racer {unique}", "email": spelled})
        for spelled, stack in targets
    ]

    answers = _all_at_once(calls)

    created: Counter[str] = Counter()
    for (spelled, stack), answer in zip(targets, answers, strict=True):
        if answer.status_code == 201:
            created[spelled.lower()] += 1
        else:
            assert_error(stack, answer, 409)
    assert created == Counter({email: 1 for email in emails})
    with db.connect() as conn:
        rows = conn.scalar(
            select(func.count()).select_from(Customer).where(func.lower(Customer.email).in_(emails))
        )
    assert rows == len(emails)
