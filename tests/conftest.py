"""Fixtures: a real gateway on a real port, over SQLite and (when configured) PostgreSQL.

`GATEWAY_TEST_DATABASE_URL` (a PostgreSQL URL the tests may create databases with) adds
the PostgreSQL half; `.ci/run` always sets it. Each backend gets a database of its own,
migrated and seeded once and dropped at the end. Tests make their own rows with unique
names rather than truncating between tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from gateway.background_server import BackgroundServer
from gateway.ledger.store_migrate import upgrade_control_database
from shop.app import create_app
from shop.carrier_stub import CarrierBehaviour, create_carrier_app
from shop.settings import ShopSettings
from shop_core.database import create_sync_engine, temporary_postgres_database
from shop_core.migrate import upgrade
from shop_core.seed import seed_demo_data
from tests.support import DEMO_PASSWORD, STACKS, Stack

POSTGRES_ADMIN_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_ADMIN_URL else ["sqlite"]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, seeded database of its own for the session, per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}"
        _prepare(url)
        yield url
        return
    assert POSTGRES_ADMIN_URL is not None
    with temporary_postgres_database(POSTGRES_ADMIN_URL) as url:
        _prepare(url)
        yield url


def _prepare(url: str) -> None:
    upgrade(url)
    # The shop keeps its route statuses in its own database (shop/app.py).
    upgrade_control_database(url)
    engine = create_sync_engine(url, pool_size=1)
    try:
        seed_demo_data(engine, password=DEMO_PASSWORD)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Engine]:
    """A sync engine on the test database, for asserting rows."""
    engine = create_sync_engine(database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def carrier() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_carrier_app(CarrierBehaviour(latency_ms=5))) as server:
        yield server


def make_settings(database_url: str, **overrides: Any) -> ShopSettings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "secret_key": "test-secret-" + "x" * 32,
        "log_level": "WARNING",
        # The whole suite logs in from one address over one database, fuzzers included:
        # the real limits would lock it out. tests/contract/test_login_throttle.py sets its own.
        "login_max_failures_per_username": 10_000,
        "login_max_failures_per_address": 10_000,
    }
    values.update(overrides)
    return ShopSettings(**values)


@pytest.fixture(scope="session")
def settings(database_url: str, carrier: BackgroundServer) -> ShopSettings:
    return make_settings(database_url, carrier_url=carrier.url, carrier_timeout_s=2.0)


@pytest.fixture(scope="session")
def gateway(settings: ShopSettings) -> Iterator[BackgroundServer]:
    """The whole gateway, served by uvicorn on a free port."""
    with BackgroundServer(create_app(settings), settings=settings) as server:
        yield server


@pytest.fixture(scope="session")
def tokens(gateway: BackgroundServer) -> dict[str, str]:
    """One token per demo user, from the legacy login (both stacks accept either)."""
    result = {}
    for user in ("admin", "clerk", "viewer"):
        answer = requests.post(
            f"{gateway.url}/legacy/auth/token",
            json={"username": user, "password": DEMO_PASSWORD},
            timeout=10,
        )
        answer.raise_for_status()
        result[user] = answer.json()["access_token"]
    return result


@pytest.fixture(params=STACKS)
def stack(
    request: pytest.FixtureRequest, gateway: BackgroundServer, tokens: dict[str, str]
) -> Stack:
    """One of the two stacks, behind the same gateway."""
    return Stack(request.param, gateway.url, tokens)


@pytest.fixture
def legacy(gateway: BackgroundServer, tokens: dict[str, str]) -> Stack:
    return Stack("legacy", gateway.url, tokens)


@pytest.fixture
def v2(gateway: BackgroundServer, tokens: dict[str, str]) -> Stack:
    return Stack("v2", gateway.url, tokens)


@pytest.fixture
def unique() -> str:
    """A short tag that makes a test's rows its own (skus, names, emails)."""
    return uuid.uuid4().hex[:8].upper()


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    assert database is not None
    return Path(database)
