"""Products: create (POST and PUT), partial update (PATCH), public representation."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import MISSING, Field

from shop_core.models import MAX_ID, Product
from shop_core.money import format_cents
from shop_core.timestamps import format_timestamp
from v2_fastapi.schemas.common import Money, Name, Price, Representation, StrictModel, Timestamp

Sku = Annotated[str, Field(pattern=r"^[A-Z0-9-]{1,32}$", examples=["KB-101"])]
Stock = Annotated[int, Field(ge=0, le=MAX_ID)]


class ProductCreate(StrictModel):
    """A whole product: the body of POST and of PUT (a full replace)."""

    sku: Sku
    name: Name
    price: Price
    stock: Stock


class ProductUpdate(StrictModel):
    """Any subset of a product's fields; `null` is not a value."""

    sku: Sku | MISSING = MISSING
    name: Name | MISSING = MISSING
    price: Price | MISSING = MISSING
    stock: Stock | MISSING = MISSING


class ProductPublic(Representation):
    id: int
    sku: str
    name: str
    price: Money
    stock: int
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Product) -> Self:
        return cls(
            id=row.id,
            sku=row.sku,
            name=row.name,
            price=format_cents(row.price_cents),
            stock=row.stock,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ProductsPublic(StrictModel):
    items: list[ProductPublic]
    total: int
    limit: int
    offset: int


def product_document(row: Any) -> dict[str, Any]:
    """The JSON object of `ProductPublic` for a row read with `services.products.COLUMNS`.

    Built straight from the row for reads, which skip the model: the same fields, in the
    same order, formatted by the same helpers (tests/v2_fastapi/test_documents.py holds
    the two equal).
    """
    return {
        "id": row.id,
        "sku": row.sku,
        "name": row.name,
        "price": format_cents(row.price_cents),
        "stock": row.stock,
        "created_at": format_timestamp(row.created_at),
        "updated_at": format_timestamp(row.updated_at),
    }
