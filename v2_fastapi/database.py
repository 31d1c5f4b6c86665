"""v2's one way to the database: a request's database work is one sync function, run in one go.

Services are plain functions: reads of a SQLAlchemy `Connection` (Core, rows straight to
JSON, no ORM bookkeeping), writes of a `Session` (the ORM's unit of work, which the
service commits). A route awaits `db.read(fn, ...)` or `db.write(fn, ...)`; when `fn`
returns or raises, its connection goes back to the pool with whatever it did not commit
rolled back, so an error changes nothing.

SQLite (`ThreadedDatabase`): the sqlite3 module blocks, so each unit of work runs in a
worker thread, one hop for all of its statements (aiosqlite hops once per call: connect,
execute, fetch, rollback...). Reads take one of `pool_size` places, so that a thread never
waits for a pooled connection. Writes take the single place of the single writer, on a
connection of their own whose transactions begin IMMEDIATE: writers queue here, in order,
rather than each waiting in SQLite's busy handler, which sleeps and polls (under a burst
of orders that made the tail seconds long). The write lock is only ever asked for by one
v2 connection; the legacy stack and other processes still meet the busy handler.

PostgreSQL (`AsyncDriverDatabase`): asyncpg in the event loop, the same sync function run
through SQLAlchemy's greenlet bridge (`run_sync`): no thread at all. asyncpg's prepared
statement cache is on (the dialect's `prepared_statement_cache_size`, 100 by default), so
a statement seen before is not parsed and planned again.

Cancellation (a client gone, a shutdown): a unit of work running in a thread cannot be
interrupted, and is not abandoned either (`abandon_on_cancel=False`, anyio's default): the
cancelled request waits for it to finish, so its transaction is committed or rolled back
and its connection returned before the cancellation goes on, and the read places never
count fewer threads than are really running. PostgreSQL's units of work are shielded
the same way. Unshielded, a cancelled statement made SQLAlchemy drop the connection, but
the server does not notice a closed socket until it answers: the statement ran on, its
transaction holding its row locks, and the next write to those rows waited just as long,
with a connection to make again on top.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Concatenate, ParamSpec, TypeVar

from anyio import CancelScope, CapacityLimiter, to_thread
from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from shop_core.database import (
    WRITE_OPTIONS,
    create_async_db_engine,
    create_sync_engine,
    is_sqlite,
)

P = ParamSpec("P")
T = TypeVar("T")

ReadWork = Callable[Concatenate[Connection, P], T]
WriteWork = Callable[Concatenate[Session, P], T]


class Database(ABC):
    """Runs units of work: `read` on a connection, `write` in an ORM session."""

    @abstractmethod
    async def read(self, fn: ReadWork[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(connection, *args, **kwargs)`, its transaction rolled back afterwards."""

    @abstractmethod
    async def write(self, fn: WriteWork[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(session, *args, **kwargs)`; what `fn` did not commit is rolled back."""

    @abstractmethod
    async def dispose(self) -> None:
        """Close the pooled connections."""


def _in_connection(engine: Engine, fn: ReadWork[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    with engine.connect() as conn:
        return fn(conn, *args, **kwargs)


def _in_session(engine: Engine, fn: WriteWork[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    # expire_on_commit=False: the route builds its answer from the objects just committed.
    with Session(engine, expire_on_commit=False) as session:
        return fn(session, *args, **kwargs)


class ThreadedDatabase(Database):
    """SQLite through the blocking driver: one thread hop per unit of work."""

    def __init__(self, url: str, *, pool_size: int) -> None:
        self._readers = create_sync_engine(url, pool_size=pool_size)
        # Its own pool of one: the single writer never waits behind readers for a connection.
        self._writer = create_sync_engine(url, pool_size=1, max_overflow=0).execution_options(
            **WRITE_OPTIONS
        )
        self._read_places = CapacityLimiter(pool_size)
        self._write_place = CapacityLimiter(1)

    async def read(self, fn: ReadWork[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        work = partial(_in_connection, self._readers, fn, *args, **kwargs)
        return await to_thread.run_sync(work, limiter=self._read_places)

    async def write(self, fn: WriteWork[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        work = partial(_in_session, self._writer, fn, *args, **kwargs)
        return await to_thread.run_sync(work, limiter=self._write_place)

    async def dispose(self) -> None:
        await to_thread.run_sync(self._readers.dispose)
        await to_thread.run_sync(self._writer.dispose)


class AsyncDriverDatabase(Database):
    """PostgreSQL through asyncpg: the sync function bridged onto the event loop."""

    def __init__(self, url: str, *, pool_size: int) -> None:
        self._engine: AsyncEngine = create_async_db_engine(url, pool_size=pool_size)

    async def read(self, fn: ReadWork[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        with CancelScope(shield=True):
            async with self._engine.connect() as conn:
                result = await conn.run_sync(fn, *args, **kwargs)
        return result

    async def write(self, fn: WriteWork[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        with CancelScope(shield=True):
            async with AsyncSession(self._engine, expire_on_commit=False) as session:
                result = await session.run_sync(fn, *args, **kwargs)
        return result

    async def dispose(self) -> None:
        await self._engine.dispose()


def open_database(url: str, *, pool_size: int) -> Database:
    """The database of `url`, each backend reached the way that costs it least."""
    if is_sqlite(url):
        return ThreadedDatabase(url, pool_size=pool_size)
    return AsyncDriverDatabase(url, pool_size=pool_size)
