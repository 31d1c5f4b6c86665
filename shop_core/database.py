"""Engines for both stacks over one database: a sync one for Flask, an async one for FastAPI.

SQLite gets WAL, a busy timeout and foreign keys. Write transactions on SQLite start
with `BEGIN IMMEDIATE`: a deferred transaction that reads and then writes fails at once
with "database is locked" when another connection wrote in between, instead of waiting.
Sessions opened for writing carry the `WRITE_OPTIONS` execution options to ask for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 10_000
# A PostgreSQL server that does not answer at all (its host down, packets dropped) would
# hold a connection attempt for minutes (psycopg: the kernel's SYN retries; asyncpg: 60 s)
# and the request with it; after this long it fails, and the request gets its 503.
PG_CONNECT_TIMEOUT_S = 5
WRITE_OPTIONS = {"shop_write": True}

_SYNC_DRIVERS = {"sqlite": "sqlite+pysqlite", "postgresql": "postgresql+psycopg"}
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def _with_driver(url: str | URL, drivers: dict[str, str]) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.set(drivername=drivers[backend])


def sync_url(url: str | URL) -> URL:
    return _with_driver(url, _SYNC_DRIVERS)


def async_url(url: str | URL) -> URL:
    return _with_driver(url, _ASYNC_DRIVERS)


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _pool_options(pool_size: int, max_overflow: int | None = None) -> dict[str, Any]:
    # No pre-ping (a round trip on every checkout): a connection found dead raises a
    # disconnect error, answered 503, and SQLAlchemy then invalidates the whole pool,
    # so the next requests reconnect by themselves.
    return {
        "pool_size": pool_size,
        "max_overflow": pool_size if max_overflow is None else max_overflow,
    }


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the driver so that `_on_begin` decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("shop_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_sync_engine(
    url: str | URL, *, pool_size: int = 10, max_overflow: int | None = None
) -> Engine:
    target = sync_url(url)
    pool = _pool_options(pool_size, max_overflow)
    if is_sqlite(target):
        engine = create_engine(target, **pool)
        _configure_sqlite(engine)
        return engine
    # libpq counts connect_timeout in whole seconds, 2 at least.
    connect_args = {"connect_timeout": max(2, PG_CONNECT_TIMEOUT_S)}
    return create_engine(target, connect_args=connect_args, **pool)


def create_async_db_engine(
    url: str | URL, *, pool_size: int = 10, max_overflow: int | None = None
) -> AsyncEngine:
    target = async_url(url)
    if is_sqlite(target):
        engine = create_async_engine(target, **_pool_options(pool_size, max_overflow))
        _configure_sqlite(engine.sync_engine)
        return engine
    connect_args = {"timeout": PG_CONNECT_TIMEOUT_S}
    return create_async_engine(
        target, connect_args=connect_args, **_pool_options(pool_size, max_overflow)
    )


@contextmanager
def temporary_postgres_database(server_url: str) -> Iterator[str]:
    """A fresh, empty database on the server of `server_url`, dropped afterwards.

    For test and load runs that must start from the same state every time.
    """
    name = f"gateway_scratch_{uuid.uuid4().hex[:12]}"
    admin = create_engine(sync_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
