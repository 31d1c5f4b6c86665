"""The canary's parts on their own: who a client is, its bucket, the verdict over a window,
and two processes rolling back the same route (one change recorded, no error); on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.ledger.canary import Canary, CanaryPolicy, bucket, client_key, roll_back
from gateway.ledger.model import RouteState, RouteStatus
from gateway.ledger.store import DatabaseStatuses
from tests.gateway.control_database import BACKENDS, control_database
from tests.gateway.ledger_pair import LEDGER


def _scope(authorization: str | None = None, address: str = "10.0.0.7") -> dict[str, object]:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return {"type": "http", "headers": headers, "client": (address, 5555)}


def _jwt(payload: object) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"Bearer eyJhbGciOiJIUzI1NiJ9.{encoded}.signature"


def test_the_client_is_its_subject_else_its_address() -> None:
    assert client_key(_scope(_jwt({"sub": "ada"})), "subject") == "sub:ada"
    assert client_key(_scope(_jwt({"sub": "ada"})), "address") == "addr:10.0.0.7"
    for unusable in (None, "Basic YTpi", "Bearer x.y", _jwt({"sub": 7}), _jwt(["sub"])):
        assert client_key(_scope(unusable), "subject") == "addr:10.0.0.7"


def test_a_bucket_is_stable_and_spread() -> None:
    # Fixed values: the same in every process, on every host, after every restart.
    assert bucket("sub:ada", "products.read") == bucket("sub:ada", "products.read")
    buckets = [bucket(f"sub:user-{n}", "products.read") for n in range(2000)]
    assert set(buckets) == set(range(100))
    assert 0.27 <= sum(b < 30 for b in buckets) / len(buckets) <= 0.33
    # Routes are drawn independently: a client is not v2 on every route at once.
    other = [bucket(f"sub:user-{n}", "orders.read") for n in range(2000)]
    assert buckets != other


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _answer(canary: Canary, clock: Clock, side: str, status: int, seconds: float) -> None:
    sent: list[object] = []

    async def send(message: object) -> None:
        sent.append(message)

    observed, _ = canary.observe(send, "r", side)  # type: ignore[arg-type]

    async def serve() -> None:
        await observed({"type": "http.response.start", "status": status, "headers": []})
        clock.now += seconds
        await observed({"type": "http.response.body", "body": b""})

    asyncio.run(serve())


def test_the_verdict_compares_v2_with_legacy_over_the_window() -> None:
    clock = Clock()
    canary = Canary(CanaryPolicy(window_s=60, min_requests=4), clock=clock)
    for _ in range(4):
        _answer(canary, clock, "legacy", 200, 0.010)
    for status in (200, 200, 200):
        _answer(canary, clock, "v2", status, 0.012)
    assert canary.judgement("r") is None  # v2 has 3 requests, fewer than 4
    _answer(canary, clock, "v2", 502, 0.012)
    assert canary.judgement("r") == (
        "v2 5xx rate 25.0 % > legacy 0.0 % + 1.0 % over 60 s (4 / 4 requests)"
    )
    # A minute later those outcomes are out of the window.
    clock.now += 61
    assert canary.figures("r")["v2"].requests == 0
    for side, seconds in (("legacy", 0.010), ("v2", 0.020)):
        for _ in range(4):
            _answer(canary, clock, side, 200, seconds)
    assert canary.judgement("r") == (
        "v2 p95 20.0 ms > legacy p95 10.0 ms x 1.5 over 60 s (4 / 4 requests)"
    )


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with control_database(request.param, tmp_path) as url:
        yield url


def test_two_processes_rolling_back_record_one_change(url: str) -> None:
    first, second = DatabaseStatuses(LEDGER, url), DatabaseStatuses(LEDGER, url)

    async def scenario() -> None:
        canary = RouteStatus(RouteState.CANARY, share=10)
        await first.change("notes.read", canary, actor="ops", reason="try v2")
        await second.refresh()
        # Both judged v2 worse, at the same moment: one rolls back, the other finds it done.
        outcomes = await asyncio.gather(
            *(roll_back(store, "notes.read", "v2 5xx rate 9.0 %") for store in (first, second))
        )
        assert sorted(outcomes) == ["no longer in canary", "rolled back"]
        history = await second.history("notes.read")
        assert [(c.actor, c.after.state) for c in history] == [
            ("ops", RouteState.CANARY),
            ("gateway canary", RouteState.LEGACY),
        ]
        assert history[-1].after.share == 10
        await second.refresh()
        assert second.current("notes.read").state is RouteState.LEGACY

    try:
        asyncio.run(scenario())
    finally:
        first.close()
        second.close()
