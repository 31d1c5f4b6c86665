"""Orders, on both stacks: atomic placement, stock, cancellation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from shop_core.database import is_sqlite
from shop_core.models import Order, OrderItem, Product
from tests.support import Stack, assert_error


def _stock(db: Engine, product_id: int) -> int:
    with db.connect() as conn:
        stock = conn.scalar(select(Product.stock).where(Product.id == product_id))
    assert stock is not None
    return stock


def _order_count(db: Engine, customer_id: int) -> int:
    with db.connect() as conn:
        count = conn.scalar(
            select(func.count()).select_from(Order).where(Order.customer_id == customer_id)
        )
    return count or 0


def test_placing_an_order_takes_stock_and_prices_it(stack: Stack, unique: str, db: Engine) -> None:
    pen = stack.create_product(unique, price="2.50", stock=10)
    ink = stack.create_product(unique + "I", price="0.99", stock=5)
    customer = stack.create_customer(unique)
    answer = stack.place_order(customer["id"], (pen["id"], 3), (ink["id"], 2))
    assert answer.status_code == 201, answer.text
    order = answer.json()
    assert list(order) == ["id", "customer_id", "status", "items", "total", "created_at"]
    assert order["customer_id"] == customer["id"]
    assert order["status"] == "placed"
    assert order["items"] == [
        {"product_id": pen["id"], "quantity": 3, "unit_price": "2.50"},
        {"product_id": ink["id"], "quantity": 2, "unit_price": "0.99"},
    ]
    assert order["total"] == "9.48"
    assert answer.headers["Location"] == f"{stack.prefix}/orders/{order['id']}"
    assert (_stock(db, pen["id"]), _stock(db, ink["id"])) == (7, 3)
    assert stack.get(f"/orders/{order['id']}", user="viewer").json() == order


def test_unit_price_is_the_price_at_order_time(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique, price="5.00")
    customer = stack.create_customer(unique)
    order = stack.place_order(customer["id"], (product["id"], 1)).json()
    changed = {"sku": product["sku"], "name": product["name"], "price": "7.00", "stock": 9}
    assert stack.put(f"/products/{product['id']}", json=changed, user="admin").status_code == 200
    again = stack.get(f"/orders/{order['id']}", user="viewer").json()
    assert again["items"][0]["unit_price"] == "5.00"
    assert again["total"] == "5.00"


def test_not_enough_stock_is_409_naming_the_product_and_changes_nothing(
    stack: Stack, unique: str, db: Engine
) -> None:
    plenty = stack.create_product(unique, stock=10)
    scarce = stack.create_product(unique + "S", stock=1)
    customer = stack.create_customer(unique)
    answer = stack.place_order(customer["id"], (plenty["id"], 2), (scarce["id"], 2))
    body = assert_error(stack, answer, 409)
    message = body["error"]["message"] if stack.name == "legacy" else body["detail"]
    assert str(scarce["id"]) in message
    assert scarce["sku"] in message
    assert (_stock(db, plenty["id"]), _stock(db, scarce["id"])) == (10, 1)
    assert _order_count(db, customer["id"]) == 0


@pytest.mark.parametrize(
    "items",
    [
        [],
        [{"product_id": 1, "quantity": 0}],
        [{"product_id": 1, "quantity": 1001}],
        [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}],
        [{"product_id": 999999999, "quantity": 1}],
        [{"product_id": 1}],
        [{"product_id": i, "quantity": 1} for i in range(1, 52)],
    ],
    ids=["empty", "zero", "too-many", "duplicate", "unknown-product", "no-quantity", "51-items"],
)
def test_invalid_orders_are_rejected_and_change_nothing(
    stack: Stack, unique: str, db: Engine, items: list[dict[str, Any]]
) -> None:
    customer = stack.create_customer(unique)
    # A product of this test's own stands for product 1 (other tests, Schemathesis among
    # them, may change or delete the demo rows).
    product = stack.create_product(unique, stock=1000)
    items = [
        {**item, "product_id": product["id"]} if item.get("product_id") == 1 else item
        for item in items
    ]
    before = _stock(db, product["id"])
    answer = stack.post(
        "/orders", json={"customer_id": customer["id"], "items": items}, user="clerk"
    )
    assert_error(stack, answer, stack.invalid_status)
    assert _stock(db, product["id"]) == before
    assert _order_count(db, customer["id"]) == 0


def test_the_last_units_can_be_ordered(stack: Stack, unique: str, db: Engine) -> None:
    product = stack.create_product(unique, stock=3)
    customer = stack.create_customer(unique)
    answer = stack.place_order(customer["id"], (product["id"], 3))
    assert answer.status_code == 201, answer.text
    assert _stock(db, product["id"]) == 0
    assert_error(stack, stack.place_order(customer["id"], (product["id"], 1)), 409)


def test_the_largest_order_is_accepted(stack: Stack, unique: str, db: Engine) -> None:
    # As many items as an order may hold (API.md: 50), one in the largest quantity (1000).
    products = [stack.create_product(f"{unique}{n}", stock=1000) for n in range(50)]
    customer = stack.create_customer(unique)
    items = [(product["id"], 1) for product in products[1:]]
    answer = stack.place_order(customer["id"], (products[0]["id"], 1000), *items)
    assert answer.status_code == 201, answer.text
    assert len(answer.json()["items"]) == 50
    assert _stock(db, products[0]["id"]) == 0


def test_legacy_ignores_unknown_fields_in_an_order_and_its_items(
    legacy: Stack, unique: str
) -> None:
    product = legacy.create_product(unique)
    customer = legacy.create_customer(unique)
    item = {"product_id": product["id"], "quantity": 1, "gift_wrap": True}
    body = {"customer_id": customer["id"], "items": [item], "note": "leave at the door"}
    answer = legacy.post("/orders", json=body, user="clerk")
    assert answer.status_code == 201, answer.text
    assert answer.json()["items"] == [
        {"product_id": product["id"], "quantity": 1, "unit_price": "10.00"}
    ]


def test_an_invalid_item_is_named_where_it_is(legacy: Stack, unique: str) -> None:
    # Legacy names a nested field by its path: {"items": {"1": {"quantity": [...]}}}.
    product = legacy.create_product(unique)
    other = legacy.create_product(unique + "B")
    customer = legacy.create_customer(unique)
    answer = legacy.place_order(customer["id"], (product["id"], 1), (other["id"], 0))
    fields = assert_error(legacy, answer, 400)["error"]["fields"]
    assert list(fields) == ["items"]
    assert list(fields["items"]) == ["1"]
    assert list(fields["items"]["1"]) == ["quantity"]
    messages = fields["items"]["1"]["quantity"]
    assert messages and all(isinstance(message, str) for message in messages)


def test_an_unknown_customer_is_a_validation_error(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique)
    answer = stack.place_order(999999999, (product["id"], 1))
    assert_error(stack, answer, stack.invalid_status)


def test_v2_wants_json_integers(v2: Stack, unique: str) -> None:
    product = v2.create_product(unique)
    customer = v2.create_customer(unique)
    for item in (
        {"product_id": str(product["id"]), "quantity": 1},
        {"product_id": product["id"], "quantity": 1.0},
    ):
        body = {"customer_id": customer["id"], "items": [item]}
        assert_error(v2, v2.post("/orders", json=body, user="clerk"), 422)


def test_orders_need_write_to_place_and_read_to_see(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique)
    customer = stack.create_customer(unique)
    body = {"customer_id": customer["id"], "items": [{"product_id": product["id"], "quantity": 1}]}
    assert_error(stack, stack.post("/orders", json=body), 401)
    assert_error(stack, stack.post("/orders", json=body, user="viewer"), 403)
    assert_error(stack, stack.get("/orders"), 401)
    assert_error(stack, stack.get("/orders/1"), 401)
    assert_error(stack, stack.get("/orders/999999999", user="viewer"), 404)


def test_cancel_gives_stock_back_once(stack: Stack, unique: str, db: Engine) -> None:
    product = stack.create_product(unique, stock=5)
    customer = stack.create_customer(unique)
    order = stack.place_order(customer["id"], (product["id"], 4)).json()
    assert _stock(db, product["id"]) == 1
    assert_error(stack, stack.post(f"/orders/{order['id']}/cancel", user="viewer"), 403)
    answer = stack.post(f"/orders/{order['id']}/cancel", user="clerk")
    assert answer.status_code == 200, answer.text
    assert answer.json() == order | {"status": "cancelled"}
    assert _stock(db, product["id"]) == 5
    assert_error(stack, stack.post(f"/orders/{order['id']}/cancel", user="clerk"), 409)
    assert _stock(db, product["id"]) == 5
    assert_error(stack, stack.post("/orders/999999999/cancel", user="clerk"), 404)


def test_order_rows_match_the_answer(stack: Stack, unique: str, db: Engine) -> None:
    product = stack.create_product(unique, price="1.25")
    customer = stack.create_customer(unique)
    order = stack.place_order(customer["id"], (product["id"], 4)).json()
    with db.connect() as conn:
        row = conn.execute(select(Order).where(Order.id == order["id"])).one()
        items = conn.execute(select(OrderItem).where(OrderItem.order_id == order["id"])).all()
    assert (row.status, row.total_cents, row.customer_id) == ("placed", 500, customer["id"])
    assert [(i.product_id, i.quantity, i.unit_price_cents) for i in items] == [
        (product["id"], 4, 125)
    ]


@contextmanager
def _customer_vanishes_on_order(db: Engine, customer_id: int) -> Iterator[None]:
    """While open, an order row for `customer_id` deletes the customer just before it is
    written, in the order's own transaction: a delete that lands between the order's checks
    and its commit, made certain. The foreign key then refuses the order at commit."""
    # DDL takes no bound parameters; the id is an int the test made.
    name = f"vanish_customer_{int(customer_id)}"
    delete = f"DELETE FROM customers WHERE id = {customer_id}"  # noqa: S608
    if is_sqlite(db.url):
        create = [
            f"CREATE TRIGGER {name} BEFORE INSERT ON orders"
            f" WHEN NEW.customer_id = {customer_id} BEGIN {delete}; END"
        ]
        drop = [f"DROP TRIGGER {name}"]
    else:
        create = [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$ BEGIN {delete}; RETURN NEW; END $$",
            f"CREATE TRIGGER {name} BEFORE INSERT ON orders FOR EACH ROW"
            f" WHEN (NEW.customer_id = {customer_id}) EXECUTE FUNCTION {name}()",
        ]
        drop = [f"DROP TRIGGER {name} ON orders", f"DROP FUNCTION {name}()"]
    with db.begin() as conn:
        for statement in create:
            conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        with db.begin() as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)


def test_a_customer_deleted_before_the_order_commits_is_409_and_changes_nothing(
    stack: Stack, unique: str, db: Engine
) -> None:
    product = stack.create_product(unique, stock=5)
    customer = stack.create_customer(unique)
    with _customer_vanishes_on_order(db, customer["id"]):
        answer = stack.place_order(customer["id"], (product["id"], 2))
    # Not the stack's specific conflicts (stock, a taken email): the constraint's, general one.
    body = assert_error(stack, answer, 409)
    if stack.name == "legacy":
        assert body["error"]["code"] == "conflict"
    assert _stock(db, product["id"]) == 5
    assert _order_count(db, customer["id"]) == 0
    assert stack.get(f"/customers/{customer['id']}", user="clerk").status_code == 200
