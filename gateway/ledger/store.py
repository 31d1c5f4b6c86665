"""`DatabaseStatuses`: the route statuses in the control database, as every process sees them.

Each process keeps a snapshot in memory, so that serving (`current()`) never waits for the
database; `polling()`, run for as long as the gateway serves, asks the database every
`poll_interval_s` whether anything changed (one cheap query on the change table) and
loads the statuses again when it did, so a change made anywhere (the admin API of
another process, another host, the command line) is served everywhere within about one
interval. A change is checked, applied and recorded in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.ledger.model import (
    FULL_SHARE,
    NEEDS_ADAPTER,
    SERVED_STATES,
    Ledger,
    LedgerRoute,
    RouteChange,
    RouteState,
    RouteStatus,
    StatusRefused,
)
from gateway.ledger.store_engine import WRITE, create_control_engine
from gateway.ledger.store_tables import ACTOR_LENGTH, route_change, route_status

log = logging.getLogger("gateway.ledger")

UNCHANGED = RouteStatus()
# Given the status a route has in the database now, the one it is to have.
Edit = Callable[[RouteStatus], RouteStatus]


class UnknownRoute(LookupError):
    """No route of the ledger has this id."""


def check_change(ledger: Ledger, route_id: str, after: RouteStatus) -> LedgerRoute:
    """The route, when the ledger allows it `after`; else `UnknownRoute` or `StatusRefused`."""
    route = ledger.get(route_id)
    if route is None:
        raise UnknownRoute(route_id)
    if after.state not in SERVED_STATES:
        raise StatusRefused(f"state {after.state.value!r} is not served yet")
    if after.state in NEEDS_ADAPTER and route.adapter is None:
        raise StatusRefused(
            f"route {route_id} has no adapter: it cannot be served by v2 "
            f"(state {after.state.value!r})"
        )
    if not 0 <= after.share <= FULL_SHARE:
        raise StatusRefused(f"the share is a percentage (0 to {FULL_SHARE}), not {after.share}")
    for name, value in (("deprecation", after.deprecation), ("sunset", after.sunset)):
        if value is not None and value.tzinfo is None:
            raise StatusRefused(f"the {name} date needs a time zone")
    if (
        after.deprecation is not None
        and after.sunset is not None
        and after.sunset < after.deprecation
    ):
        raise StatusRefused("the sunset cannot come before the deprecation")
    return route


@dataclass(frozen=True)
class _Version:
    """What the poll compares: it changes with every recorded change (ids may commit out of
    order on PostgreSQL, so the count is part of it)."""

    changes: int
    last_id: int


class DatabaseStatuses:
    """The `RouteStatuses` of a ledger, in the control database at `database_url`."""

    def __init__(self, ledger: Ledger, database_url: str, *, poll_interval_s: float = 0.5) -> None:
        self.ledger = ledger
        self.poll_interval_s = poll_interval_s
        self._engine: Engine = create_control_engine(database_url)
        self._snapshot: Mapping[str, RouteStatus] = {}
        self._version: _Version | None = None

    # Serving: memory only.

    def current(self, route_id: str) -> RouteStatus:
        return self._snapshot.get(route_id, UNCHANGED)

    def snapshot(self) -> Mapping[str, RouteStatus]:
        """Every route that has a status of its own (the others are `legacy`, unannounced)."""
        return self._snapshot

    # Keeping the snapshot fresh.

    async def refresh(self) -> bool:
        """Load the statuses again if anything changed since the last look; True if it did."""
        loaded = await asyncio.to_thread(self._load_if_changed, self._version)
        if loaded is None:
            return False
        self._version, self._snapshot = loaded
        return True

    async def loaded(self) -> bool:
        """Whether the statuses were read at least once: a readiness check for /health."""
        return self._version is not None

    @asynccontextmanager
    async def polling(self) -> AsyncIterator[None]:
        """The first load, then a background task that polls until the context ends; the
        engine is closed after."""
        try:
            try:
                await self.refresh()
            except Exception:
                # The gateway still starts, as it does with its other databases down: /health
                # says 503 until the statuses are read, and meanwhile every route is legacy.
                log.exception("control database unreachable: every route served by legacy")
            stop = asyncio.Event()
            task = asyncio.create_task(self._poll(stop), name="gateway route statuses")
            try:
                yield
            finally:
                # Not cancelled: a poll in flight runs in a thread, which would go on with
                # its connection after the engine is closed; it ends at its next turn.
                stop.set()
                await task
        finally:
            await asyncio.to_thread(self._engine.dispose)

    async def _poll(self, stop: asyncio.Event) -> None:
        failing = self._version is None
        while not stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval_s)
                return
            try:
                await self.refresh()
            except Exception:
                # The last snapshot is served meanwhile; said once per outage, not per poll.
                if not failing:
                    log.warning("control database unreachable: serving the last route statuses")
                    failing = True
                continue
            if failing:
                log.info("control database reachable again")
                failing = False

    def _load_if_changed(
        self, seen: _Version | None
    ) -> tuple[_Version, dict[str, RouteStatus]] | None:
        with self._engine.connect() as conn:
            # The version first: a change committed between the two reads is loaded now
            # and loaded once more on the next poll, never missed.
            changes, last_id = conn.execute(
                select(func.count(), func.coalesce(func.max(route_change.c.id), 0))
            ).one()
            version = _Version(changes=changes, last_id=last_id)
            if version == seen:
                return None
            rows = conn.execute(select(route_status)).all()
        return version, {row.route_id: _status(row, "") for row in rows}

    # Changing.

    async def change(
        self, route_id: str, after: RouteStatus, *, actor: str, reason: str
    ) -> RouteChange:
        return await self.edit(route_id, lambda _before: after, actor=actor, reason=reason)

    async def edit(self, route_id: str, edit: Edit, *, actor: str, reason: str) -> RouteChange:
        """Change a route's status from the one in the database (not this process's
        snapshot, which may be a poll behind): partial changes never undo another's."""
        if self.ledger.get(route_id) is None:
            raise UnknownRoute(route_id)
        recorded = await asyncio.to_thread(self._edit, route_id, edit, actor, reason)
        # This process serves its own change at once; the others on their next poll.
        self._snapshot = {**self._snapshot, route_id: recorded.after}
        return recorded

    def _edit(self, route_id: str, edit: Edit, actor: str, reason: str) -> RouteChange:
        now = datetime.now(UTC)
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            _ensure_row(conn, route_id, now)
            row = conn.execute(
                select(route_status).where(route_status.c.route_id == route_id).with_for_update()
            ).one()
            before = _status(row, "")
            after = edit(before)
            check_change(self.ledger, route_id, after)
            # As it will be loaded again: every process serves the same instants, in UTC.
            after = RouteStatus(
                state=after.state,
                deprecation=_utc(after.deprecation),
                sunset=_utc(after.sunset),
                share=after.share,
            )
            conn.execute(
                update(route_status)
                .where(route_status.c.route_id == route_id)
                .values(
                    state=after.state.value,
                    deprecation=after.deprecation,
                    sunset=after.sunset,
                    share=after.share,
                    updated_at=now,
                )
            )
            recorded = RouteChange(
                route_id=route_id,
                at=now,
                actor=actor[:ACTOR_LENGTH],
                reason=reason,
                before=before,
                after=after,
            )
            conn.execute(insert(route_change).values(**_change_row(recorded)))
        return recorded

    # Reading the record.

    async def history(self, route_id: str) -> list[RouteChange]:
        if self.ledger.get(route_id) is None:
            raise UnknownRoute(route_id)
        return await asyncio.to_thread(self._history, route_id)

    def _history(self, route_id: str) -> list[RouteChange]:
        query = (
            select(route_change)
            .where(route_change.c.route_id == route_id)
            .order_by(route_change.c.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            RouteChange(
                route_id=row.route_id,
                at=row.at,
                actor=row.actor,
                reason=row.reason,
                before=_status(row, "before_"),
                after=_status(row, "after_"),
            )
            for row in rows
        ]

    def close(self) -> None:
        """For a store used without `polling()` (the command line)."""
        self._engine.dispose()


def _ensure_row(conn: Connection, route_id: str, now: datetime) -> None:
    """A row to lock: a route never changed has none, and two first changes of it must
    not both read "no status" (an insert that does nothing when the row is there)."""
    values: dict[str, Any] = {
        "route_id": route_id,
        "state": RouteState.LEGACY.value,
        "updated_at": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(route_status).values(**values).on_conflict_do_nothing())


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _status(row: Any, prefix: str) -> RouteStatus:
    mapping = row._mapping
    return RouteStatus(
        state=RouteState(mapping[f"{prefix}state"]),
        deprecation=mapping[f"{prefix}deprecation"],
        sunset=mapping[f"{prefix}sunset"],
        share=mapping[f"{prefix}share"],
    )


def _change_row(change: RouteChange) -> dict[str, Any]:
    return {
        "route_id": change.route_id,
        "at": change.at,
        "actor": change.actor,
        "reason": change.reason,
        **{
            f"{prefix}{field}": value
            for prefix, status in (("before_", change.before), ("after_", change.after))
            for field, value in (
                ("state", status.state.value),
                ("deprecation", status.deprecation),
                ("sunset", status.sunset),
                ("share", status.share),
            )
        },
    }
