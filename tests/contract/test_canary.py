"""The shop's `customers.read` in `canary`, end to end: a real gateway with a control
database of its own, the route moved through its admin API as an operator would, and
clients that are real users of the shop, each with a token of its own (`sub` = username).

Each client is served by one implementation only, both serve some clients at a share of
50, and the answers are the legacy contract's whichever serves. When v2 cannot reach its
database (a FastAPI dependency override: v2's `Database` opened on a URL nobody answers),
it answers 503 to its clients while Flask answers 200 to its own, and the route goes back
to `legacy` by itself, with the figures in its history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI
from sqlalchemy import Engine, delete, insert
from sqlalchemy.engine import make_url

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from loadtests.servers import free_port
from shop.app import build_pair
from shop.settings import ShopSettings
from shop_core.models import User
from tests.contract.test_ledger_serving import served_by
from tests.gateway.control_database import ADMIN_TOKEN, own_statuses
from tests.support import Stack, assert_error, assert_rolled_back_for_5xx, bearer_for, wait_for
from v2_fastapi.database import Database, open_database
from v2_fastapi.deps import get_db

TOKEN = ADMIN_TOKEN
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
ROUTE = "customers.read"
TEMPLATE = "/customers/{customer_id}"
# Fixed names: which side each one lands on is the same in every run (a hash of the name),
# and these 24 put 14 on v2 and 10 on Flask at a share of 50.
USERNAMES = tuple(f"canary-client-{n}" for n in range(24))
MIN_REQUESTS = 10


@dataclass
class Canaried:
    url: str
    v2: FastAPI
    legacy: Stack


@pytest.fixture
def canaried(
    settings: ShopSettings, database_url: str, tmp_path: Path, tokens: dict[str, str]
) -> Iterator[Canaried]:
    """A gateway over the session's rows whose route statuses are its own, judged often."""
    with own_statuses(
        settings,
        database_url,
        tmp_path,
        canary_min_requests=MIN_REQUESTS,
        canary_judge_interval_s=0.05,
        # A busy machine can make either side's p95 a few times the other's: here only
        # the 5xx rate decides.
        canary_max_p95_ratio=100,
    ) as own:
        pair = build_pair(own)
        assert isinstance(pair.v2, FastAPI)
        with BackgroundServer(create_gateway(own, pair), settings=own) as server:
            yield Canaried(server.url, pair.v2, Stack("legacy", server.url, tokens))


@pytest.fixture(scope="module")
def clients(db: Engine, settings: ShopSettings) -> Iterator[dict[str, dict[str, str]]]:
    """Users of the shop with the `read` scope, and a token each, by username."""
    with db.begin() as conn:
        conn.execute(
            insert(User),
            # No password: these users never log in; their tokens are minted below.
            [{"username": name, "password_hash": "!", "scopes": "read"} for name in USERNAMES],
        )
    yield {name: bearer_for(settings, name, "read") for name in USERNAMES}
    with db.begin() as conn:
        conn.execute(delete(User).where(User.username.in_(USERNAMES)))


def _patch(base: str, **change: Any) -> None:
    answer = requests.patch(
        f"{base}/_gateway/routes/{ROUTE}", json=change, headers=ADMIN, timeout=10
    )
    assert answer.status_code == 200, answer.text


def _admin(base: str, path: str) -> Any:
    answer = requests.get(f"{base}/_gateway/routes/{path}", headers=ADMIN, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _served(base: str) -> dict[str, float]:
    """Every answer of the route under the legacy door so far, by who served it."""
    counts: dict[str, float] = {}
    for status in ("200", "503"):
        for side, count in served_by(base, TEMPLATE, status, method="GET").items():
            counts[side] = counts.get(side, 0) + count
    return counts


def _since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {side: n - before.get(side, 0) for side, n in after.items() if n != before.get(side, 0)}


def test_each_client_keeps_its_side_and_both_sides_answer_the_legacy_contract(
    canaried: Canaried, clients: dict[str, dict[str, str]], unique: str
) -> None:
    legacy = canaried.legacy
    customer = legacy.create_customer(unique)
    path = f"/customers/{customer['id']}"
    expected = legacy.get(path, user="viewer")
    assert expected.status_code == 200, expected.text
    _patch(canaried.url, state="canary", share=50, reason="try v2 on half the clients")

    sides: dict[str, str] = {}
    for name, auth in clients.items():
        before = _served(canaried.url)
        for _ in range(3):
            answer = legacy.get(path, headers=auth)
            assert answer.status_code == 200, answer.text
            assert answer.json() == expected.json()
            for header in ("Content-Type", "ETag"):
                assert answer.headers[header] == expected.headers[header], header
        served = _since(before, _served(canaried.url))
        # All three answers of this client came from one implementation.
        assert len(served) == 1 and set(served.values()) == {3}, (name, served)
        sides[name] = next(iter(served))

    assert list(sides.values()).count("v2") == 14
    assert list(sides.values()).count("legacy") == 10
    figures = _admin(canaried.url, f"{ROUTE}/canary")
    assert figures["state"] == "canary"
    assert (figures["v2"]["requests"], figures["legacy"]["requests"]) == (3 * 14, 3 * 10)
    assert figures["v2"]["errors"] == figures["legacy"]["errors"] == 0
    # A healthy v2 is kept: the only change is the operator's.
    history = _admin(canaried.url, f"{ROUTE}/history")["changes"]
    assert [change["after"]["state"] for change in history] == ["canary"]


@pytest.fixture
def unreachable_database(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """v2's way to the database, opened on a URL where no database answers."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'not-there' / 'shop.db'}"
    else:
        url = make_url(database_url).set(port=free_port()).render_as_string(hide_password=False)
    database = open_database(url, pool_size=1)
    yield database
    asyncio.run(database.dispose())


def _rolled_back(base: str) -> dict[str, Any] | None:
    last: dict[str, Any] = _admin(base, f"{ROUTE}/history")["changes"][-1]
    return last if last["actor"] == "gateway canary" else None


def test_v2_losing_its_database_is_rolled_back_with_the_reason(
    canaried: Canaried,
    clients: dict[str, dict[str, str]],
    unreachable_database: Database,
    unique: str,
) -> None:
    legacy = canaried.legacy
    customer = legacy.create_customer(unique)
    path = f"/customers/{customer['id']}"
    expected = legacy.get(path, user="viewer").json()

    async def broken() -> Database:
        return unreachable_database

    canaried.v2.dependency_overrides[get_db] = broken
    try:
        _patch(canaried.url, state="canary", share=50, reason="try v2 on half the clients")
        statuses = []
        # Twice round: at least MIN_REQUESTS on each side, so the judge has its figures.
        for _ in range(2):
            for auth in clients.values():
                answer = legacy.get(path, headers=auth)
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    assert answer.json() == expected
                else:
                    # v2's failure, told in the legacy error format.
                    assert_error(legacy, answer, 503)
        assert 503 in statuses and 200 in statuses
        change = wait_for(lambda: _rolled_back(canaried.url), "the rollback")
    finally:
        canaried.v2.dependency_overrides.clear()

    assert_rolled_back_for_5xx(change)
    history = _admin(canaried.url, f"{ROUTE}/history")["changes"]
    assert [c["after"]["state"] for c in history] == ["canary", "legacy"]
    verdict = _admin(canaried.url, f"{ROUTE}/canary")["verdict"]
    assert (verdict["outcome"], verdict["reason"]) == ("rolled back", change["reason"])

    # From now on Flask answers every client, the ones v2 had included.
    before = _served(canaried.url)
    for auth in clients.values():
        answer = legacy.get(path, headers=auth)
        assert (answer.status_code, answer.json()) == (200, expected)
    assert _since(before, _served(canaried.url)) == {"legacy": len(clients)}
