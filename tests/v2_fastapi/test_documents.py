"""Reads build their JSON from rows without the models: it must be what the models give."""

from __future__ import annotations

from datetime import UTC, datetime

from shop_core.models import Customer, Order, OrderItem, Product
from v2_fastapi.schemas.customers import CustomerPublic, customer_document
from v2_fastapi.schemas.orders import OrderPublic, order_document
from v2_fastapi.schemas.products import ProductPublic, product_document

CREATED = datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
UPDATED = datetime(2026, 2, 1, 8, 30, 0, 7, tzinfo=UTC)


def _same(document: dict[str, object], model: dict[str, object]) -> None:
    # Equal, and with the fields in the same order as the model's.
    assert document == model
    assert list(document) == list(model)


def test_product_document_is_the_models_json() -> None:
    row = Product(
        id=7, sku="KB-101", name="Clé ünicode", price_cents=1250, stock=3,
        created_at=CREATED, updated_at=UPDATED,
    )  # fmt: skip
    _same(product_document(row), ProductPublic.from_row(row).model_dump(mode="json"))


def test_customer_document_is_the_models_json() -> None:
    row = Customer(
        id=3, name="Ada", email="ada@example.com", tier="gold",
        created_at=CREATED, updated_at=UPDATED,
    )  # fmt: skip
    _same(customer_document(row), CustomerPublic.from_row(row).model_dump(mode="json"))


def test_order_document_is_the_models_json() -> None:
    items = [
        OrderItem(product_id=2, quantity=1, unit_price_cents=999),
        OrderItem(product_id=5, quantity=4, unit_price_cents=10),
    ]
    row = Order(
        id=9, customer_id=3, status="cancelled", total_cents=1039,
        created_at=CREATED, items=items,
    )  # fmt: skip
    _same(order_document(row, items), OrderPublic.from_row(row).model_dump(mode="json"))
