"""Orders: placing one takes stock atomically, cancelling gives it back."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, url_for
from marshmallow import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.exceptions import Conflict, NotFound

from legacy_flask.auth import require_scope
from legacy_flask.conditional import tagged, tagged_unless_current
from legacy_flask.db import get_session
from legacy_flask.schemas import OrderQuerySchema, OrderSchema, dump, load_args, load_body, page_of
from shop_core.inventory import give_back_stock, take_stock
from shop_core.models import Customer, Order, OrderItem, OrderStatus, Product

bp = Blueprint("orders", __name__, url_prefix="/orders")
order_schema = OrderSchema()
query_schema = OrderQuerySchema()


def _get_or_404(session: Session, order_id: int) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"Order {order_id} not found.")
    return order


@bp.get("")
@require_scope("read")
def list_orders() -> dict[str, Any]:
    """List orders by id, optionally those of one `customer_id`."""
    args = load_args(query_schema)
    query = select(Order)
    if args["customer_id"] is not None:
        query = query.where(Order.customer_id == args["customer_id"])
    session = get_session()
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = session.scalars(
        query.order_by(Order.id)
        .limit(args["per_page"])
        .offset((args["page"] - 1) * args["per_page"])
    ).all()
    return page_of(order_schema, page, key="orders", args=args, total=total)


@bp.get("/<id:order_id>")
@require_scope("read")
def get_order(order_id: int) -> Response:
    """One order with its items, and its ETag."""
    return tagged_unless_current(dump(order_schema, _get_or_404(get_session(), order_id)))


@bp.post("")
@require_scope("write")
def place_order() -> Response:
    """Place an order: all of its stock is taken, or nothing changes."""
    data = load_body(order_schema)
    items: list[dict[str, int]] = data["items"]
    session = get_session()
    if session.get(Customer, data["customer_id"]) is None:
        raise ValidationError({"customer_id": [f"Customer {data['customer_id']} does not exist."]})
    product_ids = [item["product_id"] for item in items]
    found = session.execute(select(Product.id, Product.sku).where(Product.id.in_(product_ids)))
    skus = {pid: sku for pid, sku in found}
    missing = [f"Product {pid} does not exist." for pid in product_ids if pid not in skus]
    if missing:
        raise ValidationError({"items": missing})

    # Always in product-id order, so that two orders for the same products cannot deadlock.
    prices: dict[int, int] = {}
    for item in sorted(items, key=lambda item: item["product_id"]):
        pid = item["product_id"]
        price = session.execute(take_stock(pid, item["quantity"])).scalar_one_or_none()
        if price is None:
            session.rollback()
            raise Conflict(f"not enough stock for product {pid} ({skus[pid]})")
        prices[pid] = price

    order = Order(
        customer_id=data["customer_id"],
        status=OrderStatus.PLACED.value,
        total_cents=sum(prices[item["product_id"]] * item["quantity"] for item in items),
        items=[
            OrderItem(
                product_id=item["product_id"],
                quantity=item["quantity"],
                unit_price_cents=prices[item["product_id"]],
            )
            for item in items
        ],
    )
    session.add(order)
    session.commit()
    location = url_for("orders.get_order", order_id=order.id)
    return tagged(dump(order_schema, order), 201, {"Location": location})


@bp.post("/<id:order_id>/cancel")
@require_scope("write")
def cancel_order(order_id: int) -> Response:
    """Cancel a placed order and give its stock back."""
    session = get_session()
    # The conditional UPDATE decides, so two concurrent cancels cannot both give stock back.
    cancelled = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == OrderStatus.PLACED.value)
        .values(status=OrderStatus.CANCELLED.value)
        .returning(Order.id)
    ).scalar_one_or_none()
    if cancelled is None:
        _get_or_404(session, order_id)
        raise Conflict(f"Order {order_id} is already cancelled.")
    returned = session.scalars(
        select(OrderItem).where(OrderItem.order_id == order_id).order_by(OrderItem.product_id)
    ).all()
    for item in returned:
        session.execute(give_back_stock(item.product_id, item.quantity))
    order = _get_or_404(session, order_id)
    session.commit()
    return tagged(dump(order_schema, order))
