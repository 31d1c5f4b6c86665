"""The stock statements both stacks run: a conditional UPDATE cannot oversell.

`take_stock` only matches while enough stock is left, so two concurrent orders for the
last unit cannot both succeed, on SQLite (writers serialise) as on PostgreSQL (the row
lock makes the second UPDATE re-check the condition). Items are taken in product-id
order so that two orders for the same products cannot deadlock.
"""

from __future__ import annotations

from sqlalchemy import Update, update

from shop_core.models import Product
from shop_core.timestamps import utcnow

MAX_ORDER_ITEMS = 50
MAX_QUANTITY = 1000


def take_stock(product_id: int, quantity: int) -> Update:
    return (
        update(Product)
        .where(Product.id == product_id, Product.stock >= quantity)
        .values(stock=Product.stock - quantity, updated_at=utcnow())
        .returning(Product.price_cents)
    )


def give_back_stock(product_id: int, quantity: int) -> Update:
    return (
        update(Product)
        .where(Product.id == product_id)
        .values(stock=Product.stock + quantity, updated_at=utcnow())
    )
