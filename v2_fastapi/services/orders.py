"""Orders: place (stock taken atomically), cancel (stock given back), list."""

from __future__ import annotations

from operator import attrgetter

from fastapi import HTTPException
from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.orm import Session, joinedload

from shop_core.inventory import give_back_stock, take_stock
from shop_core.models import Customer, Order, OrderItem, OrderStatus, Product
from shop_core.money import format_cents
from v2_fastapi.schemas.orders import OrderCreate
from v2_fastapi.schemas.shipping import RateRequest
from v2_fastapi.services.common import AnyRow, get_or_404, invalid, not_found, valid_id

# The stock statements touch no object this session holds: nothing to synchronise.
_NO_SYNC = {"synchronize_session": False}
# One order with its items in one query (the relationship's default, selectin, takes two).
_WITH_ITEMS = (joinedload(Order.items),)
_ORDER_COLUMNS = (Order.id, Order.customer_id, Order.status, Order.total_cents, Order.created_at)
_ITEM_COLUMNS = (OrderItem.product_id, OrderItem.quantity, OrderItem.unit_price_cents)
# A read: the order with its items in one Core query, one row per item in id order (as the
# relationship orders them), mapped straight to JSON by `order_document`.
_WITH_ITEM_ROWS = (
    select(*_ORDER_COLUMNS, *_ITEM_COLUMNS)
    .outerjoin(OrderItem, OrderItem.order_id == Order.id)
    .where(Order.id == bindparam("id"))
    .order_by(OrderItem.id)
)
# What a shipping quote needs of an order: its total and its items, in id order.
_RATE_ROWS = (
    select(Order.total_cents, *_ITEM_COLUMNS)
    .outerjoin(OrderItem, OrderItem.order_id == Order.id)
    .where(Order.id == bindparam("id"))
    .order_by(OrderItem.id)
)
# The items of a page of orders.
_ITEMS_OF = (
    select(OrderItem.order_id, *_ITEM_COLUMNS)
    .where(OrderItem.order_id.in_(bindparam("ids", expanding=True)))
    .order_by(OrderItem.id)
)


def list_orders(
    conn: Connection, *, customer_id: int | None, limit: int, offset: int
) -> tuple[list[tuple[AnyRow, list[AnyRow]]], int]:
    """A page of orders, each with its items' rows (in id order), and the total."""
    where = [Order.customer_id == customer_id] if customer_id is not None else []
    total = conn.scalar(select(func.count()).select_from(Order).where(*where))
    rows = conn.execute(
        select(*_ORDER_COLUMNS).where(*where).order_by(Order.id).limit(limit).offset(offset)
    ).all()
    items: dict[int, list[AnyRow]] = {row.id: [] for row in rows}
    if items:
        # The page's items in one query, as the relationship's selectin load would.
        for item in conn.execute(_ITEMS_OF, {"ids": list(items)}):
            items[item.order_id].append(item)
    return [(row, items[row.id]) for row in rows], total or 0


def read_order(conn: Connection, *, order_id: int) -> tuple[AnyRow, list[AnyRow]]:
    """The order's row and its items' rows, or a 404."""
    rows = conn.execute(_WITH_ITEM_ROWS, {"id": order_id}).all() if valid_id(order_id) else []
    if not rows:
        raise not_found("order", order_id)
    # An outer join: an order without items (none is placed so) gives one row of NULLs.
    return rows[0], [row for row in rows if row.product_id is not None]


def read_rate_request(conn: Connection, *, order_id: int) -> RateRequest:
    """What the carrier is asked to rate for the order, or a 404.

    Only the columns the carrier is sent, straight to the document: the rest of the order
    and a representation that is only dumped again would be work for nothing on every
    quote.
    """
    rows = conn.execute(_RATE_ROWS, {"id": order_id}).all() if valid_id(order_id) else []
    if not rows:
        raise not_found("order", order_id)
    return {
        "order_id": order_id,
        # An outer join: an order without items (none is placed so) gives one row of NULLs.
        "items": [
            {
                "product_id": row.product_id,
                "quantity": row.quantity,
                "unit_price": format_cents(row.unit_price_cents),
            }
            for row in rows
            if row.product_id is not None
        ],
        "total": format_cents(rows[0].total_cents),
    }


def get_order(session: Session, *, order_id: int) -> Order:
    return get_or_404(session, Order, order_id, options=_WITH_ITEMS)


def place_order(session: Session, *, data: OrderCreate) -> Order:
    """Take every item's stock and write the order, in one transaction, or change nothing."""
    if session.get(Customer, data.customer_id) is None:
        raise invalid([(("body", "customer_id"), f"customer {data.customer_id} does not exist")])
    product_ids = [item.product_id for item in data.items]
    rows = session.execute(select(Product.id, Product.sku).where(Product.id.in_(product_ids)))
    skus = {product_id: sku for product_id, sku in rows}
    missing: list[tuple[tuple[str | int, ...], str]] = [
        (("body", "items", index, "product_id"), f"product {item.product_id} does not exist")
        for index, item in enumerate(data.items)
        if item.product_id not in skus
    ]
    if missing:
        raise invalid(missing)

    prices: dict[int, int] = {}
    # In product-id order, so that two orders for the same products cannot deadlock.
    for item in sorted(data.items, key=attrgetter("product_id")):
        price = session.scalar(
            take_stock(item.product_id, item.quantity), execution_options=_NO_SYNC
        )
        if price is None:
            # Raising rolls back the stock already taken: the session is closed uncommitted.
            sku = skus[item.product_id]
            raise HTTPException(409, f"not enough stock for product {item.product_id} ({sku})")
        prices[item.product_id] = price

    order = Order(
        customer_id=data.customer_id,
        status=OrderStatus.PLACED.value,
        total_cents=sum(prices[item.product_id] * item.quantity for item in data.items),
        items=[
            OrderItem(
                product_id=item.product_id,
                quantity=item.quantity,
                unit_price_cents=prices[item.product_id],
            )
            for item in data.items
        ],
    )
    session.add(order)
    session.commit()
    return order


def cancel_order(session: Session, *, order_id: int) -> Order:
    """Mark the order cancelled and give its stock back, in one transaction."""
    order = get_order(session, order_id=order_id)
    # Conditional, so that of two concurrent cancels only one gives the stock back. The
    # ORM's default synchronisation sets the loaded order's status too.
    cancelled = session.scalar(
        update(Order)
        .where(Order.id == order_id, Order.status == OrderStatus.PLACED.value)
        .values(status=OrderStatus.CANCELLED.value)
        .returning(Order.id)
    )
    if cancelled is None:
        raise HTTPException(409, f"order {order_id} is already cancelled")
    for item in sorted(order.items, key=attrgetter("product_id")):
        session.execute(give_back_stock(item.product_id, item.quantity), execution_options=_NO_SYNC)
    session.commit()
    return order
