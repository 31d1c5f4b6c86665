"""The route statuses in the control database: what a change needs, what it records, and
how another process learns of it; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select

from gateway.ledger.model import RouteState, RouteStatus, StatusRefused
from gateway.ledger.store import DatabaseStatuses, UnknownRoute
from gateway.ledger.store_engine import control_url
from gateway.ledger.store_migrate import upgrade_control_database
from gateway.ledger.store_tables import route_change, route_status
from tests.gateway.control_database import BACKENDS, control_database
from tests.gateway.ledger_pair import LEDGER

DEPRECATION = datetime(2027, 1, 31, tzinfo=UTC)
SUNSET = datetime(2027, 6, 30, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with control_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def store(url: str) -> Iterator[DatabaseStatuses]:
    statuses = DatabaseStatuses(LEDGER, url)
    yield statuses
    statuses.close()


def _rows(url: str) -> tuple[int, int]:
    engine = create_engine(control_url(url))
    try:
        with engine.connect() as conn:
            statuses = conn.scalar(select(func.count()).select_from(route_status)) or 0
            changes = conn.scalar(select(func.count()).select_from(route_change)) or 0
    finally:
        engine.dispose()
    return statuses, changes


def test_the_history_has_its_own_version_table_and_runs_twice(url: str) -> None:
    upgrade_control_database(url)
    engine = create_engine(control_url(url))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"gateway_route_status", "gateway_route_change", "gateway_alembic_version"} <= tables
    # A pair's own Alembic history keeps the default version table to itself.
    assert "alembic_version" not in tables


def test_a_change_is_served_at_once_and_recorded(store: DatabaseStatuses) -> None:
    async def scenario() -> None:
        await store.refresh()
        assert store.current("notes.read") == RouteStatus()
        change = await store.change(
            "notes.read", RouteStatus(RouteState.V2), actor="ops", reason="v2 is ready"
        )
        assert store.current("notes.read").state is RouteState.V2
        assert store.current("notes.list") == RouteStatus()
        history = await store.history("notes.read")
        assert history == [change]
        assert history[0].before == RouteStatus()
        assert history[0].after == RouteStatus(RouteState.V2)
        assert (history[0].actor, history[0].reason) == ("ops", "v2 is ready")
        assert history[0].at.tzinfo is not None
        rollback = await store.change("notes.read", RouteStatus(), actor="ops", reason="roll back")
        assert rollback.before == RouteStatus(RouteState.V2)
        assert [c.reason for c in await store.history("notes.read")] == ["v2 is ready", "roll back"]
        assert await store.history("notes.list") == []

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("route_id", "after", "refusal"),
    [
        ("notes.create", RouteStatus(RouteState.V2), StatusRefused),  # paired, no adapter
        ("slow", RouteStatus(RouteState.V2), StatusRefused),  # legacy-only
        ("notes.create", RouteStatus(RouteState.CANARY), StatusRefused),  # no adapter
        ("notes.read", RouteStatus(RouteState.SHADOW, share=101), StatusRefused),
        ("notes.read", RouteStatus(RouteState.CANARY, share=-1), StatusRefused),
        ("notes.read", RouteStatus(deprecation=SUNSET, sunset=DEPRECATION), StatusRefused),
        # a date with no time zone: no instant
        ("notes.read", RouteStatus(deprecation=datetime(2027, 1, 31)), StatusRefused),
        ("notes.nothing", RouteStatus(RouteState.V2), UnknownRoute),
    ],
)
def test_a_refused_change_changes_nothing(
    store: DatabaseStatuses,
    url: str,
    route_id: str,
    after: RouteStatus,
    refusal: type[Exception],
) -> None:
    with pytest.raises(refusal):
        asyncio.run(store.change(route_id, after, actor="ops", reason="try"))
    assert store.current(route_id) == RouteStatus()
    assert _rows(url) == (0, 0)


def test_a_legacy_only_route_can_be_retired_and_announced(store: DatabaseStatuses) -> None:
    after = RouteStatus(RouteState.RETIRED, deprecation=DEPRECATION, sunset=DEPRECATION)
    asyncio.run(store.change("slow", after, actor="ops", reason="nobody calls it"))
    assert store.current("slow") == after


def test_dates_are_kept_as_instants(store: DatabaseStatuses, url: str) -> None:
    paris = timezone(timedelta(hours=1))
    deprecation = datetime(2027, 1, 31, 12, 30, 15, tzinfo=paris)
    asyncio.run(
        store.change(
            "notes.read", RouteStatus(deprecation=deprecation), actor="ops", reason="announce"
        )
    )
    other = DatabaseStatuses(LEDGER, url)
    try:
        asyncio.run(other.refresh())
        seen = other.current("notes.read").deprecation
        assert seen == deprecation
        assert seen is not None and seen.utcoffset() == timedelta(0)
        history = asyncio.run(other.history("notes.read"))
        assert history[0].after.deprecation == deprecation
    finally:
        other.close()


def test_another_store_loads_a_change_on_its_next_refresh(
    store: DatabaseStatuses, url: str
) -> None:
    other = DatabaseStatuses(LEDGER, url)
    try:
        assert asyncio.run(other.refresh()) is True  # the first load
        assert asyncio.run(other.refresh()) is False  # nothing changed: nothing loaded
        asyncio.run(store.change("notes.list", RouteStatus(RouteState.V2), actor="a", reason=""))
        assert other.current("notes.list") == RouteStatus()  # memory only until it looks
        assert asyncio.run(other.refresh()) is True
        assert other.current("notes.list").state is RouteState.V2
    finally:
        other.close()


def test_a_partial_edit_starts_from_the_database_not_a_stale_snapshot(
    store: DatabaseStatuses, url: str
) -> None:
    stale = DatabaseStatuses(LEDGER, url)
    try:
        asyncio.run(stale.refresh())
        asyncio.run(store.change("notes.read", RouteStatus(RouteState.V2), actor="a", reason=""))
        # `stale` has not polled since: it still serves legacy, yet its edit keeps v2.
        change = asyncio.run(
            stale.edit(
                "notes.read",
                lambda before: RouteStatus(before.state, deprecation=DEPRECATION),
                actor="b",
                reason="announce",
            )
        )
        assert change.before.state is RouteState.V2
        assert change.after == RouteStatus(RouteState.V2, deprecation=DEPRECATION)
    finally:
        stale.close()


def test_concurrent_changes_of_one_route_are_recorded_one_after_the_other(
    url: str,
) -> None:
    stores = [DatabaseStatuses(LEDGER, url) for _ in range(4)]
    states = [RouteState.V2, RouteState.RETIRED, RouteState.LEGACY, RouteState.V2]

    async def scenario() -> None:
        await asyncio.gather(
            *(
                store.change("notes.read", RouteStatus(state), actor=f"s{n}", reason="race")
                for n, (store, state) in enumerate(zip(stores, states, strict=True))
            )
        )

    try:
        asyncio.run(scenario())
        history = asyncio.run(stores[0].history("notes.read"))
    finally:
        for store in stores:
            store.close()
    assert len(history) == 4
    assert history[0].before == RouteStatus()
    # Each change started from the one before it: none read a status another was replacing.
    for earlier, later in itertools.pairwise(history):
        assert later.before == earlier.after
