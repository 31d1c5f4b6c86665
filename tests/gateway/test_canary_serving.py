"""The `canary` state on the notes pair, with a v2 adapter that fails or slows on demand:
clients stay on their side, the share holds, and v2 is rolled back by itself when it does
worse than Flask beside it (and kept when it does not), with the reason in the history."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from gateway.ledger.model import Ledger
from gateway.settings import GatewaySettings
from tests.gateway.control_database import control_database
from tests.gateway.ledger_pair import LEDGER, NOTES_PAIR_OPTIONS, notes_pair
from tests.support import assert_rolled_back_for_5xx, wait_for

TOKEN = "an-admin-token-" + "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Set by the adapter on v2's answers, so that a test sees which side answered.
MARK = "x-test-implementation"


@dataclass
class Fault:
    """What the v2 side does wrong, set by a test."""

    fail: bool = False
    delay_s: float = 0.0


FAULT = Fault()


async def controlled(
    scope: Scope, receive: Receive, send: Send, *, params: Mapping[str, Any], v2: ASGIApp
) -> None:
    """v2 as it is, or failing, or slow, as `FAULT` says; its answers marked."""
    if FAULT.delay_s:
        await asyncio.sleep(FAULT.delay_s)
    if FAULT.fail:
        await send(
            {"type": "http.response.start", "status": 503, "headers": [(MARK.encode(), b"v2")]}
        )
        await send({"type": "http.response.body", "body": b""})
        return

    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], (MARK.encode(), b"v2")]}
        await send(message)

    await v2(scope, receive, marked)


def _ledger() -> Ledger:
    return Ledger(
        routes=tuple(
            replace(route, adapter=controlled) if route.adapter is not None else route
            for route in LEDGER.routes
        )
    )


@pytest.fixture(autouse=True)
def _healthy_v2() -> Iterator[None]:
    FAULT.fail, FAULT.delay_s = False, 0.0
    yield
    FAULT.fail, FAULT.delay_s = False, 0.0


def _serve(tmp_path: Path, **options: Any) -> Iterator[str]:
    with control_database("sqlite", tmp_path) as url:
        settings = GatewaySettings(
            **NOTES_PAIR_OPTIONS,
            log_level="WARNING",
            admin_token=TOKEN,
            canary_judge_interval_s=0.05,
            **options,
        )
        pair = replace(notes_pair(url), ledger=_ledger())
        with BackgroundServer(create_gateway(settings, pair), settings=settings) as server:
            yield server.url


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    # No verdict ever: stickiness and shares alone.
    yield from _serve(tmp_path, canary_min_requests=1_000_000)


@pytest.fixture
def judged(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    options: dict[str, Any] = getattr(request, "param", {})
    yield from _serve(tmp_path, canary_min_requests=10, **options)


def token_of(subject: str) -> dict[str, str]:
    """A bearer token naming `subject` (the notes pair checks no token; the canary reads
    `sub` without verifying it)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return {"Authorization": f"Bearer {part({'alg': 'HS256'})}.{part({'sub': subject})}.sig"}


def _side(base: str, headers: Mapping[str, str]) -> str:
    answer = requests.get(f"{base}/legacy/notes", headers=dict(headers), timeout=10)
    assert answer.status_code in (200, 503), answer.text
    return "v2" if answer.headers.get(MARK) == "v2" else "legacy"


def _set(base: str, route_id: str, **change: Any) -> dict[str, Any]:
    answer = requests.patch(
        f"{base}/_gateway/routes/{route_id}", json=change, headers=AUTH, timeout=10
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _get(base: str, path: str) -> dict[str, Any]:
    answer = requests.get(f"{base}/_gateway/routes/{path}", headers=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _served_by_v2(base: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_requests_total"
        and sample.labels.get("stack") == "legacy"
        and sample.labels.get("served_by") == "v2"
        and sample.labels.get("route") == "/notes"
    )


def test_a_client_stays_on_its_side_and_the_share_holds(gateway: str) -> None:
    clients = [token_of(f"user-{n}") for n in range(200)]
    _set(gateway, "notes.list", state="canary", share=30, reason="try v2 on 30 %")
    sides = [_side(gateway, client) for client in clients]
    assert 0.2 <= sides.count("v2") / len(sides) <= 0.4
    # The same client, asked again, is answered by the same side.
    for client, side in list(zip(clients, sides, strict=True))[:20]:
        assert {_side(gateway, client) for _ in range(3)} == {side}
    # A larger share keeps every client v2 had.
    _set(gateway, "notes.list", share=60)
    wider = [_side(gateway, client) for client in clients]
    assert all(w == "v2" for s, w in zip(sides, wider, strict=True) if s == "v2")
    assert sides.count("v2") < wider.count("v2")
    # Every v2 answer is counted as served by v2 under the legacy door.
    again = 3 * sides[:20].count("v2")
    assert _served_by_v2(gateway) == sides.count("v2") + again + wider.count("v2")


def test_share_0_is_all_legacy_and_100_all_v2(gateway: str) -> None:
    clients = [token_of(f"user-{n}") for n in range(50)]
    _set(gateway, "notes.list", state="canary", share=0)
    assert {_side(gateway, client) for client in clients} == {"legacy"}
    _set(gateway, "notes.list", share=100)
    assert {_side(gateway, client) for client in clients} == {"v2"}


def test_without_a_token_the_address_keeps_the_client(gateway: str) -> None:
    _set(gateway, "notes.list", state="canary", share=50)
    # Every request here comes from 127.0.0.1: one client, one side, token or garbage.
    no_token = {_side(gateway, {}) for _ in range(10)}
    garbage = {_side(gateway, {"Authorization": "Bearer not.a-jwt.!"}) for _ in range(10)}
    assert len(no_token) == 1
    assert garbage == no_token


def _history(base: str, route_id: str) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = _get(base, f"{route_id}/history")["changes"]
    return changes


def _rolled_back(base: str) -> dict[str, Any] | None:
    changes = _history(base, "notes.list")
    return changes[-1] if changes[-1]["actor"] == "gateway canary" else None


def _traffic(base: str, clients: int) -> list[str]:
    return [_side(base, token_of(f"user-{n}")) for n in range(clients)]


def test_v2_answering_5xx_is_rolled_back_with_the_reason(judged: str) -> None:
    FAULT.fail = True
    _set(judged, "notes.list", state="canary", share=50, reason="try v2")
    sides = _traffic(judged, 80)
    assert "v2" in sides
    change = wait_for(lambda: _rolled_back(judged), "the rollback")
    assert_rolled_back_for_5xx(change)
    assert [c["actor"] for c in _history(judged, "notes.list")][-1] == "gateway canary"
    assert len(_history(judged, "notes.list")) == 2
    # From now on Flask answers everyone.
    assert set(_traffic(judged, 80)) == {"legacy"}
    canary = _get(judged, "notes.list/canary")
    assert canary["state"] == "legacy"
    assert canary["verdict"]["outcome"] == "rolled back"
    assert canary["verdict"]["reason"] == change["reason"]


def _judged_healthy(base: str) -> dict[str, Any] | None:
    canary = _get(base, "notes.list/canary")
    verdict = canary["verdict"]
    return canary if verdict is not None and verdict["outcome"] == "healthy" else None


# A slow machine can make one side's p95 a few times the other's; only errors count here.
@pytest.mark.parametrize("judged", [{"canary_max_p95_ratio": 50}], indirect=True)
def test_a_healthy_v2_stays_in_canary(judged: str) -> None:
    _set(judged, "notes.list", state="canary", share=50, reason="try v2")
    _traffic(judged, 80)
    canary = wait_for(lambda: _judged_healthy(judged), "a verdict")
    for side in ("legacy", "v2"):
        assert canary[side]["requests"] >= 10
        assert canary[side]["errors"] == 0
        assert canary[side]["p95_ms"] > 0
    assert canary["policy"]["min_requests"] == 10
    listed = requests.get(f"{judged}/_gateway/routes", headers=AUTH, timeout=10).json()
    assert {r["id"]: r["state"] for r in listed["routes"]}["notes.list"] == "canary"
    assert [c["actor"] for c in _history(judged, "notes.list")] == ["admin-api 127.0.0.1"]
    assert _history(judged, "notes.list")[-1]["after"]["state"] == "canary"


@pytest.mark.parametrize("judged", [{"canary_max_p95_ratio": 3}], indirect=True)
def test_a_slow_v2_is_rolled_back_on_its_p95(judged: str) -> None:
    FAULT.delay_s = 0.3
    _set(judged, "notes.list", state="canary", share=50, reason="try v2")
    _traffic(judged, 60)
    change = wait_for(lambda: _rolled_back(judged), "the rollback")
    assert re.fullmatch(
        r"v2 p95 \d+\.\d ms > legacy p95 \d+\.\d ms x 3 over 60 s \(\d+ / \d+ requests\)",
        change["reason"],
    ), change["reason"]
    v2_p95 = float(change["reason"].split()[2])
    assert v2_p95 >= 300
