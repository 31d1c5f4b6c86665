"""Orders: the body that places one, and the public representation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Self

from pydantic import Field, Strict, field_validator

from shop_core.inventory import MAX_ORDER_ITEMS, MAX_QUANTITY
from shop_core.models import Order, OrderStatus
from shop_core.money import format_cents
from shop_core.timestamps import format_timestamp
from v2_fastapi.schemas.common import DbId, Money, Representation, StrictModel, Timestamp

Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]


class OrderItemCreate(StrictModel):
    product_id: DbId
    quantity: Quantity


class OrderCreate(StrictModel):
    customer_id: DbId
    items: Annotated[list[OrderItemCreate], Field(min_length=1, max_length=MAX_ORDER_ITEMS)]

    @field_validator("items")
    @classmethod
    def _distinct_products(cls, items: list[OrderItemCreate]) -> list[OrderItemCreate]:
        if len({item.product_id for item in items}) != len(items):
            raise ValueError("each product may appear only once")
        return items


class OrderItemPublic(StrictModel):
    product_id: int
    quantity: int
    unit_price: Money


class OrderPublic(Representation):
    id: int
    customer_id: int
    status: Annotated[OrderStatus, Strict(False)]
    items: list[OrderItemPublic]
    total: Money
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: Order) -> Self:
        return cls.from_rows(row, row.items)

    @classmethod
    def from_rows(cls, row: Any, items: Sequence[Any]) -> Self:
        """From the order's row (an `Order`, or a Core row of its columns) and its items'."""
        return cls(
            id=row.id,
            customer_id=row.customer_id,
            status=OrderStatus(row.status),
            items=[
                OrderItemPublic(
                    product_id=item.product_id,
                    quantity=item.quantity,
                    unit_price=format_cents(item.unit_price_cents),
                )
                for item in items
            ],
            total=format_cents(row.total_cents),
            created_at=row.created_at,
        )


class OrdersPublic(StrictModel):
    items: list[OrderPublic]
    total: int
    limit: int
    offset: int


def order_document(row: Any, items: Sequence[Any]) -> dict[str, Any]:
    """The JSON object of `OrderPublic` for an order's row and its items' rows (by id)."""
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "status": OrderStatus(row.status).value,
        "items": [
            {
                "product_id": item.product_id,
                "quantity": item.quantity,
                "unit_price": format_cents(item.unit_price_cents),
            }
            for item in items
        ],
        "total": format_cents(row.total_cents),
        "created_at": format_timestamp(row.created_at),
    }
