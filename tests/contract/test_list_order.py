"""List windows follow the id order where the database would return rows in another order.

A list without ORDER BY comes out in whatever order the database reads rows: on
PostgreSQL the order of the tuples in the table's pages, which an UPDATE changes (the new
version of the row is written elsewhere); on SQLite the order of its rowids, which are the
ids. So the windows here are read where those orders differ: on PostgreSQL after updates
that move the oldest row behind the others, on SQLite from a gateway of this module's own
whose connections return every unordered SELECT backwards (`PRAGMA
reverse_unordered_selects`, which SQLite has for finding exactly this).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.pool import ConnectionPoolEntry

import shop_core.database
from gateway.background_server import BackgroundServer
from shop.app import create_app
from shop.settings import ShopSettings
from shop_core.database import is_sqlite
from tests.support import STACKS, Stack

# Updates of one row, at most, to move it behind the others in the table's pages.
MOST_MOVES = 10


@pytest.fixture(scope="module")
def reversing_gateway(settings: ShopSettings) -> Iterator[BackgroundServer]:
    """A gateway over the session's database whose SQLite connections (both stacks')
    return unordered rows backwards; on PostgreSQL, an ordinary one."""
    configure = shop_core.database._configure_sqlite

    def configure_reversed(engine: Engine) -> None:
        configure(engine)

        @event.listens_for(engine, "connect")
        def _reverse(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA reverse_unordered_selects=ON")
            cursor.close()

    with ExitStack() as running:
        # Engines are made as the apps are built and started (v2's in its lifespan).
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(shop_core.database, "_configure_sqlite", configure_reversed)
            server = running.enter_context(
                BackgroundServer(create_app(settings), settings=settings)
            )
        yield server


@pytest.fixture(params=STACKS)
def reversing(
    request: pytest.FixtureRequest, reversing_gateway: BackgroundServer, tokens: dict[str, str]
) -> Stack:
    return Stack(request.param, reversing_gateway.url, tokens)


def _move_behind(db: Engine, table: str, ids: list[int], away: str, back: str) -> None:
    """On PostgreSQL, rewrite the row of the smallest id until it is stored behind the
    others; SQLite stores rows by id.

    Each rewrite changes an indexed column and then restores it (`away`, `back`): an
    UPDATE that changes no indexed column may be a HOT one, which leaves the index entries
    pointing at the row's old place, so an index or bitmap scan would still meet it first
    (the cancel before is one such).
    """
    if is_sqlite(db.url):
        return
    stored = text(f"SELECT id FROM {table} WHERE id = ANY(:ids) ORDER BY ctid")  # noqa: S608
    rewrites = [text(f"UPDATE {table} SET {change} WHERE id = :id") for change in (away, back)]  # noqa: S608
    for _ in range(MOST_MOVES):
        with db.begin() as conn:
            for rewrite in rewrites:
                conn.execute(rewrite, {"id": min(ids)})
            if conn.scalars(stored, {"ids": ids}).all() != sorted(ids):
                return
    pytest.fail(f"row {min(ids)} of {table} still stored first after {MOST_MOVES} rewrites")


def _ids(stack: Stack, path: str, resource: str, **params: Any) -> list[int]:
    body = stack.window(path, user="viewer", **params)
    return [item["id"] for item in stack.items(body, resource)]


def test_order_windows_follow_ids_not_storage(reversing: Stack, unique: str, db: Engine) -> None:
    product = reversing.create_product(unique, stock=10)
    customer = reversing.create_customer(unique)
    orders = []
    for _ in range(3):
        answer = reversing.place_order(customer["id"], (product["id"], 1))
        assert answer.status_code == 201, answer.text
        orders.append(answer.json()["id"])
    # The first order changes (an UPDATE), then is stored behind the others.
    cancel = reversing.post(f"/orders/{orders[0]}/cancel", user="clerk")
    assert cancel.status_code == 200, cancel.text
    other = reversing.create_customer(unique + "O")
    mine = customer["id"]
    _move_behind(db, "orders", orders, f"customer_id = {other['id']}", f"customer_id = {mine}")
    by = {"customer_id": customer["id"]}
    assert _ids(reversing, "/orders", "orders", offset=0, limit=2, **by) == orders[:2]
    assert _ids(reversing, "/orders", "orders", offset=2, limit=2, **by) == orders[2:]
    assert _ids(reversing, "/orders", "orders", offset=0, limit=10, **by) == orders


def test_product_windows_follow_ids_not_storage(reversing: Stack, unique: str, db: Engine) -> None:
    products = [reversing.create_product(f"{unique}{n}")["id"] for n in range(3)]
    _move_behind(db, "products", products, "sku = lower(sku)", "sku = upper(sku)")
    search = {"q": f"T-{unique}"}
    assert _ids(reversing, "/products", "products", offset=0, limit=2, **search) == products[:2]
    assert _ids(reversing, "/products", "products", offset=2, limit=2, **search) == products[2:]
