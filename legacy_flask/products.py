"""Products: the catalogue. Reading is public; changing it needs the admin scope."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, url_for
from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import Conflict, NotFound

from legacy_flask.auth import require_scope
from legacy_flask.conditional import check_if_match, tagged, tagged_unless_current
from legacy_flask.db import get_session
from legacy_flask.schemas import (
    ProductQuerySchema,
    ProductSchema,
    dump,
    load_args,
    load_body,
    page_of,
)
from shop_core.models import OrderItem, Product

bp = Blueprint("products", __name__, url_prefix="/products")
product_schema = ProductSchema()
query_schema = ProductQuerySchema()


def _get_or_404(session: Session, product_id: int, *, for_update: bool = False) -> Product:
    # FOR UPDATE locks the row on PostgreSQL; SQLite has no row locks and needs none, since
    # a write transaction began with BEGIN IMMEDIATE and holds the database's write lock.
    product = session.get(Product, product_id, with_for_update=for_update or None)
    if product is None:
        raise NotFound(f"Product {product_id} not found.")
    return product


def _get_to_change(session: Session, product_id: int) -> Product:
    """The product, locked, if If-Match names its current tag: no order can slip in between."""
    product = _get_or_404(session, product_id, for_update=True)
    check_if_match(dump(product_schema, product))
    return product


def _commit_or_conflict(session: Session, sku: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        # The unique index decides, so two concurrent requests cannot both win.
        raise Conflict(f"A product with sku {sku!r} already exists.") from None


@bp.get("")
def list_products() -> dict[str, Any]:
    """List products by id; `q` matches name or sku, case-insensitively."""
    args = load_args(query_schema)
    query = select(Product)
    if args["q"]:
        query = query.where(
            or_(
                Product.name.icontains(args["q"], autoescape=True),
                Product.sku.icontains(args["q"], autoescape=True),
            )
        )
    session = get_session()
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = session.scalars(
        query.order_by(Product.id)
        .limit(args["per_page"])
        .offset((args["page"] - 1) * args["per_page"])
    ).all()
    return page_of(product_schema, page, key="products", args=args, total=total)


@bp.get("/<id:product_id>")
def get_product(product_id: int) -> Response:
    """One product, with its ETag."""
    return tagged_unless_current(dump(product_schema, _get_or_404(get_session(), product_id)))


@bp.post("")
@require_scope("admin")
def create_product() -> Response:
    """Add a product; its sku must be new."""
    data = load_body(product_schema)
    session = get_session()
    product = Product(**data)
    session.add(product)
    _commit_or_conflict(session, data["sku"])
    location = url_for("products.get_product", product_id=product.id)
    return tagged(dump(product_schema, product), 201, {"Location": location})


@bp.put("/<id:product_id>")
@require_scope("admin")
def replace_product(product_id: int) -> Response:
    """Replace a product's sku, name, price and stock (If-Match is honoured, not required)."""
    data = load_body(product_schema)
    session = get_session()
    product = _get_to_change(session, product_id)
    for name, value in data.items():
        setattr(product, name, value)
    _commit_or_conflict(session, data["sku"])
    return tagged(dump(product_schema, product))


@bp.delete("/<id:product_id>")
@require_scope("admin")
def delete_product(product_id: int) -> tuple[str, int]:
    """Delete a product that no order mentions."""
    session = get_session()
    product = _get_to_change(session, product_id)
    in_use = Conflict(f"Product {product_id} appears in an order.")
    if session.scalar(select(exists().where(OrderItem.product_id == product_id))):
        raise in_use
    session.delete(product)
    try:
        session.commit()
    except IntegrityError:
        # An order for it was placed after the check: the foreign key still says no.
        session.rollback()
        raise in_use from None
    return "", 204
