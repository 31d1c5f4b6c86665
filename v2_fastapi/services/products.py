"""Products: list, create, change, delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException
from sqlalchemy import Connection, bindparam, exists, func, or_, select
from sqlalchemy.orm import Session

from shop_core.models import OrderItem, Product
from shop_core.money import parse_money
from v2_fastapi.schemas.products import ProductCreate, ProductPublic, ProductUpdate
from v2_fastapi.services.common import (
    AnyRow,
    check_if_match,
    commit_or_conflict,
    get_or_404,
    row_or_404,
)

# Reads select these columns with Core and map the rows straight to JSON
# (`schemas.products.product_document`): no ORM objects, no identity map.
COLUMNS = (
    Product.id,
    Product.sku,
    Product.name,
    Product.price_cents,
    Product.stock,
    Product.created_at,
    Product.updated_at,
)
# Built once: only the bound id changes from one request to the next.
_BY_ID = select(*COLUMNS).where(Product.id == bindparam("id"))


def _columns(data: ProductCreate | ProductUpdate) -> dict[str, Any]:
    values = data.model_dump()  # fields left out of a PATCH are not in it
    if "price" in values:
        values["price_cents"] = parse_money(values.pop("price"))
    return values


def _duplicate_sku(sku: str) -> HTTPException:
    return HTTPException(409, f"a product with sku {sku} already exists")


def list_products(
    conn: Connection, *, q: str | None, limit: int, offset: int
) -> tuple[Sequence[AnyRow], int]:
    # autoescape: a % or _ in q is matched literally.
    where = (
        [or_(Product.name.icontains(q, autoescape=True), Product.sku.icontains(q, autoescape=True))]
        if q
        else []
    )
    total = conn.scalar(select(func.count()).select_from(Product).where(*where))
    rows = conn.execute(
        select(*COLUMNS).where(*where).order_by(Product.id).limit(limit).offset(offset)
    )
    return rows.all(), total or 0


def read_product(conn: Connection, *, product_id: int) -> AnyRow:
    """The product's row (`COLUMNS`), or a 404."""
    return row_or_404(conn, _BY_ID, "product", product_id)


def create_product(session: Session, *, data: ProductCreate) -> Product:
    product = Product(**_columns(data))
    session.add(product)
    commit_or_conflict(session, _duplicate_sku(data.sku))
    return product


def _get_to_change(session: Session, product_id: int, if_match: str | None) -> Product:
    # Locked, and compared with If-Match as it is now: no order can take stock between the
    # check and the write.
    product = get_or_404(session, Product, product_id, for_update=True)
    check_if_match(if_match, ProductPublic.from_row(product).etag())
    return product


def update_product(
    session: Session,
    *,
    product_id: int,
    data: ProductCreate | ProductUpdate,
    if_match: str | None = None,
) -> Product:
    product = _get_to_change(session, product_id, if_match)
    for column, value in _columns(data).items():
        setattr(product, column, value)
    conflict = _duplicate_sku(product.sku)  # a failed flush leaves the row unreadable
    commit_or_conflict(session, conflict)
    return product


def delete_product(session: Session, *, product_id: int, if_match: str | None = None) -> None:
    product = _get_to_change(session, product_id, if_match)
    conflict = HTTPException(409, f"product {product_id} appears in an order")
    if session.scalar(select(exists().where(OrderItem.product_id == product_id))):
        raise conflict
    session.delete(product)
    # The foreign key catches an order placed for it since the check.
    commit_or_conflict(session, conflict)
