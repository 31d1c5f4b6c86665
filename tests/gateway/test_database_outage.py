"""The database becoming unavailable: 503 in each stack's dialect, and recovery by itself.

PostgreSQL is a server the gateway reaches over TCP: a proxy between them is cut (its
listener closed, every connection dropped: the server is down) and restored, then made a
black hole (connections dropped, new ones unanswered: the server's host is unreachable)
and restored, while the gateway keeps running.

SQLite is a library reading a file in the gateway's own process: there is no server to
go away and no connection to cut, and as root (as tests run here) no file permission
keeps the process out. What does happen to a deployment is another process holding the
write lock (a backup, a migration, a `sqlite3` shell left in a transaction) for longer
than the busy timeout. Writers then get "database is locked": that must be a 503, not a
500, and writes must work again as soon as the lock is released. Readers are not
blocked (WAL), so reads and the health check keep answering 200.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy.engine import make_url

import shop_core.database
from gateway.background_server import BackgroundServer
from shop.app import create_app
from shop_core.database import is_sqlite
from tests.conftest import make_settings, sqlite_path
from tests.support import Stack, assert_error
from tests.tcp_proxy import TcpProxy

FAIL_FAST_S = 2.0  # a refused connection is known at once
PG_CONNECT_TIMEOUT_S = 2  # libpq's minimum
UNANSWERED_S = PG_CONNECT_TIMEOUT_S + 1.5  # a connection attempt nobody answers
RECOVERY_S = 15.0  # the gateway answers again within this after the database is back
SQLITE_BUSY_TIMEOUT_MS = 300
SQLITE_LOCKED_S = SQLITE_BUSY_TIMEOUT_MS / 1000 + 1.5

Probe = Callable[[], requests.Response]


class Probes:
    """A read and a write on each stack, and the health check."""

    def __init__(self, url: str, tokens: dict[str, str]) -> None:
        self.url = url
        self.legacy = Stack("legacy", url, tokens)
        self.v2 = Stack("v2", url, tokens)

    def _create(self, stack: Stack) -> Probe:
        return lambda: stack.post(
            "/customers",
            json={"name": "Outage", "email": f"outage-{uuid.uuid4().hex}@example.com"},
            user="clerk",
        )

    def reads(self) -> dict[str, Probe]:
        return {
            "legacy read": lambda: self.legacy.get("/customers", user="viewer"),
            "v2 read": lambda: self.v2.get("/customers", user="viewer"),
        }

    def writes(self) -> dict[str, Probe]:
        return {"legacy write": self._create(self.legacy), "v2 write": self._create(self.v2)}

    def health(self) -> requests.Response:
        return requests.get(f"{self.url}/health", timeout=15)

    def stack_of(self, name: str) -> Stack:
        return self.legacy if name.startswith("legacy") else self.v2


def _timed(probe: Probe) -> tuple[requests.Response, float]:
    started = time.monotonic()
    answer = probe()
    return answer, time.monotonic() - started


def _burst(probes: dict[str, Probe], times: int) -> list[tuple[str, requests.Response]]:
    """Every probe `times` times, all at once: enough to use several pooled connections."""
    calls = [(name, probe) for name, probe in probes.items() for _ in range(times)]
    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(pool.map(lambda call: call[1](), calls))
    return [(name, answer) for (name, _), answer in zip(calls, answers, strict=True)]


def _all_unavailable(probes: Probes, bound_s: float) -> None:
    """Every probe at once: each a 503 in its dialect, none later than `bound_s`."""
    everything = probes.reads() | probes.writes() | {"health": probes.health}
    with ThreadPoolExecutor(len(everything)) as pool:
        timed = dict(zip(everything, pool.map(_timed, everything.values()), strict=True))
    for name, (answer, elapsed) in timed.items():
        if name == "health":
            assert answer.status_code == 503, answer.text
            body = answer.json()
            assert (body["status"], body["database"]) == ("unavailable", "unavailable")
        else:
            assert_error(probes.stack_of(name), answer, 503)
        assert elapsed < bound_s, f"{name}: 503 after {elapsed:.2f} s"


def _recovers(probes: Probes) -> None:
    everything = probes.reads() | probes.writes()
    restored = time.monotonic()
    while True:
        answers = [*_burst(everything, 4), ("health", probes.health())]
        failed = [(n, a.status_code) for n, a in answers if a.status_code >= 300]
        if not failed:
            break
        assert all(status == 503 for _, status in failed), failed
        assert time.monotonic() - restored < RECOVERY_S, f"still failing: {failed}"
    # Back for good: no dead connection left in any pool.
    for name, answer in _burst(everything, 6):
        assert answer.status_code in (200, 201), f"{name}: {answer.text}"


def _postgres_gone_and_back(
    database_url: str, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read when the engines are made: a short one keeps the test short.
    monkeypatch.setattr(shop_core.database, "PG_CONNECT_TIMEOUT_S", PG_CONNECT_TIMEOUT_S)
    url = make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
        settings = make_settings(proxied, db_pool_size=4)
        with BackgroundServer(create_app(settings)) as server:
            probes = Probes(server.url, tokens)
            for name, answer in _burst(probes.reads() | probes.writes(), 4):
                assert answer.status_code in (200, 201), f"{name}: {answer.text}"
            # Refused: the server process is gone. Unanswered: its host is.
            for outage, bound_s in ((proxy.cut, FAIL_FAST_S), (proxy.blackhole, UNANSWERED_S)):
                outage()
                # Twice: first the pooled connections are found dead, then new ones fail.
                for _ in range(2):
                    _all_unavailable(probes, bound_s)
                proxy.restore()
                _recovers(probes)


def _sqlite_locked_and_released(
    database_url: str, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway's connections read the busy timeout when they open: a short one keeps
    # the test short; the behaviour past it is the same as past the 10 s default.
    monkeypatch.setattr(shop_core.database, "SQLITE_BUSY_TIMEOUT_MS", SQLITE_BUSY_TIMEOUT_MS)
    settings = make_settings(database_url)
    with BackgroundServer(create_app(settings)) as server:
        probes = Probes(server.url, tokens)
        locker = sqlite3.connect(sqlite_path(database_url), isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # the write lock, held until released
            for name, probe in probes.writes().items():
                answer, elapsed = _timed(probe)
                assert_error(probes.stack_of(name), answer, 503)
                assert elapsed < SQLITE_LOCKED_S, f"{name}: 503 after {elapsed:.2f} s"
            for name, probe in probes.reads().items():
                assert probe().status_code == 200, name
            assert probes.health().status_code == 200
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        for name, probe in probes.writes().items():
            answer = probe()
            assert answer.status_code == 201, f"{name}: {answer.text}"


def test_an_unavailable_database_is_503_and_recovery_needs_no_restart(
    database_url: str, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if is_sqlite(database_url):
        _sqlite_locked_and_released(database_url, tokens, monkeypatch)
    else:
        _postgres_gone_and_back(database_url, tokens, monkeypatch)
