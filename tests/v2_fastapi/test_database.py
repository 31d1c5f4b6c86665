"""v2's units of work: rolled back unless committed, and cancelled without leaving anything held.

A request is cancelled when its client goes or the server shuts down. Whatever its unit
of work had done uncommitted must be gone, its connection back, and the next write to
the same row must go through at once: no transaction left open, no lock held, no place
of the single SQLite writer taken for good.
"""

from __future__ import annotations

import threading
import uuid

import anyio
from anyio import to_thread
from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.orm import Session

from shop_core.database import is_sqlite
from shop_core.models import Product
from shop_core.timestamps import utcnow
from tests.support import wait_for
from v2_fastapi.database import Database, open_database

FREED_WITHIN_S = 3.0


def _new_product(engine: Engine) -> int:
    with Session(engine) as session:
        product = Product(
            sku=f"UOW-{uuid.uuid4().hex[:12].upper()}",
            name="Unit of work",
            price_cents=100,
            stock=10,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        session.add(product)
        session.commit()
        return product.id


def _stock(engine: Engine, product_id: int) -> int | None:
    with engine.connect() as conn:
        return conn.scalar(select(Product.stock).where(Product.id == product_id))


def _take_one(session: Session, product_id: int) -> None:
    session.execute(update(Product).where(Product.id == product_id).values(stock=Product.stock - 1))


def _take_one_and_commit(session: Session, product_id: int) -> int:
    _take_one(session, product_id)
    session.commit()
    stock = session.scalar(select(Product.stock).where(Product.id == product_id))
    assert stock is not None
    return stock


class _HeldWrite:
    """A write that takes SQLite's write lock and waits, in its thread, to be released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        # For each end of the awaiting task: whether the work had finished by then.
        self.ended_after_work: list[bool] = []

    def work(self, session: Session, product_id: int) -> None:
        _take_one(session, product_id)  # the write lock is taken, nothing committed
        self.started.set()
        assert self.release.wait(10)
        self.finished.set()

    async def run(self, db: Database, product_id: int) -> None:
        try:
            await db.write(self.work, product_id)
        finally:
            self.ended_after_work.append(self.finished.is_set())


class _HeldPostgresWrite(_HeldWrite):
    """A write that locks a row and waits for an advisory lock the test holds."""

    KEY = 7_340_211

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.holder = engine.connect()
        self.holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self.KEY})

    def work(self, session: Session, product_id: int) -> None:
        _take_one(session, product_id)  # the row is locked, nothing committed
        session.execute(text("SELECT pg_advisory_lock(:key) /* held write */"), {"key": self.KEY})
        session.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.KEY})
        self.finished.set()

    def waiting(self) -> bool:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%held write%' AND pid <> pg_backend_pid()"
        )
        with self.engine.connect() as conn:
            return bool(conn.scalar(query))

    def let_go(self) -> None:
        self.holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.KEY})
        self.holder.close()


async def _cancel_then_write(url: str, engine: Engine, product_id: int) -> None:
    db = open_database(url, pool_size=2)
    try:
        async with anyio.create_task_group() as group:
            if is_sqlite(url):
                held = _HeldWrite()
                group.start_soon(held.run, db, product_id)
                await to_thread.run_sync(wait_for, held.started.is_set, "the write begun")
                group.cancel_scope.cancel()
                held.release.set()
            else:
                held = _HeldPostgresWrite(engine)
                group.start_soon(held.run, db, product_id)
                await to_thread.run_sync(wait_for, held.waiting, "the write waiting")
                group.cancel_scope.cancel()
                # Blocking, and short: the cancelled scope allows no await here.
                held.let_go()
        # Not abandoned: the cancelled request waited for its work to finish.
        assert held.ended_after_work == [True]
        with anyio.fail_after(FREED_WITHIN_S):
            assert await db.write(_take_one_and_commit, product_id) == 9
            assert await db.read(_read_stock, product_id=product_id) == 9
    finally:
        await db.dispose()


def _read_stock(conn: Connection, *, product_id: int) -> int | None:
    return conn.scalar(select(Product.stock).where(Product.id == product_id))


def test_a_cancelled_unit_of_work_is_rolled_back_and_holds_nothing(
    database_url: str, db: Engine
) -> None:
    product_id = _new_product(db)
    anyio.run(_cancel_then_write, database_url, db, product_id)
    assert _stock(db, product_id) == 9


async def _fail_after_writing(url: str, product_id: int) -> None:
    database: Database = open_database(url, pool_size=2)

    def work(session: Session) -> None:
        _take_one(session, product_id)
        raise LookupError("the service refused")

    try:
        try:
            await database.write(work)
        except LookupError:
            pass
        else:
            raise AssertionError("the error did not reach the caller")
    finally:
        await database.dispose()


def test_a_unit_of_work_that_raises_changes_nothing(database_url: str, db: Engine) -> None:
    product_id = _new_product(db)
    anyio.run(_fail_after_writing, database_url, product_id)
    assert _stock(db, product_id) == 10
