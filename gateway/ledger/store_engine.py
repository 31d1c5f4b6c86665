"""The control database's engine: a small synchronous pool, used from worker threads.

The control plane touches the database only to poll for a change (twice a second, one
row), to load the statuses when one is seen, and when an operator changes something: a
synchronous engine driven through `asyncio.to_thread` keeps the event loop free and
needs no async driver. A bare `postgresql://` URL gets psycopg, as SQLAlchemy would give
psycopg2.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 10_000
# A control database that does not answer must not hold a poll (or a start) for minutes.
PG_CONNECT_TIMEOUT_S = 5
# Execution option of the connections that change a status: on SQLite their transaction
# takes the write lock at BEGIN, so two changes of one route cannot both read its old status.
WRITE = {"gateway_control_write": True}
_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "sqlite": "sqlite+pysqlite"}


def control_url(url: str | URL) -> URL:
    parsed = make_url(url)
    if parsed.drivername in _DEFAULT_DRIVERS:
        return parsed.set(drivername=_DEFAULT_DRIVERS[parsed.drivername])
    return parsed


def create_control_engine(url: str | URL) -> Engine:
    target = control_url(url)
    if target.get_backend_name() not in _DEFAULT_DRIVERS:
        raise ValueError(
            f"unsupported control database {target.get_backend_name()!r}: use sqlite or postgresql"
        )
    if target.get_backend_name() == "sqlite":
        engine = create_engine(target, pool_size=2, max_overflow=2)
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if target.drivername == "postgresql+psycopg":
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(target, pool_size=2, max_overflow=2, connect_args=connect_args)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Transactions are begun by `_on_begin`, not by the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL: a poll never waits for a writer of the same file (the pair's, or ours).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get("gateway_control_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")
