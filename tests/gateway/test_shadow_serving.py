"""Shadowing on the notes pair with adapters made to differ or to hang: a different answer
is reported with its JSON pointer (redacted), in the admin API and the metric; work over
the concurrency or time budget is dropped and counted, never queued; and a shadow call
waits for a moment with no client request in flight."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from gateway.ledger.compare import ShadowRules
from gateway.ledger.model import Ledger, LedgerRoute
from gateway.ledger.shadow import Captured, Counts, Shadow
from gateway.settings import GatewaySettings
from tests.gateway.control_database import control_database
from tests.gateway.ledger_pair import LEDGER, NOTES_PAIR_OPTIONS, notes_pair
from tests.support import wait_for

TOKEN = "an-admin-token-" + "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RELEASE = threading.Event()


async def different(
    scope: Scope, receive: Receive, send: Send, *, params: Mapping[str, Any], v2: ASGIApp
) -> None:
    """v2 as if it had a bug: another text, and a field that must not be kept."""
    body = json.dumps({"id": params["note_id"], "text": "not the same", "owner": "a@x.io"})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


async def hanging(
    scope: Scope, receive: Receive, send: Send, *, params: Mapping[str, Any], v2: ASGIApp
) -> None:
    await asyncio.to_thread(RELEASE.wait, 10)


def _ledger() -> Ledger:
    routes = {route.id: route for route in LEDGER.routes}
    return Ledger(
        routes=(
            replace(routes["notes.list"], adapter=hanging),
            replace(
                routes["notes.read"],
                adapter=different,
                shadow=ShadowRules(sensitive=frozenset({"owner"})),
            ),
            routes["notes.create"],
            routes["slow"],
        )
    )


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    with control_database("sqlite", tmp_path) as url:
        settings = GatewaySettings(
            **NOTES_PAIR_OPTIONS,
            log_level="WARNING",
            admin_token=TOKEN,
            shadow_max_concurrency=1,
            shadow_timeout_s=0.5,
            # Shadow calls wait for an idle moment for as long as their budget lasts.
            shadow_wait_for_idle_s=10,
        )
        pair = replace(notes_pair(url), ledger=_ledger())
        with BackgroundServer(create_gateway(settings, pair), settings=settings) as server:
            yield server.url
    RELEASE.set()


def _shadow(base: str, route_id: str) -> dict[str, Any]:
    answer = requests.get(f"{base}/_gateway/routes/{route_id}/shadow", headers=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _set(base: str, route_id: str, **change: Any) -> dict[str, Any]:
    answer = requests.patch(
        f"{base}/_gateway/routes/{route_id}", json=change, headers=AUTH, timeout=10
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _metric(base: str, route_id: str, result: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gateway_shadow_comparisons_total" and sample.labels == {
                "route": route_id,
                "result": result,
            }:
                return sample.value
    return 0.0


def test_a_different_answer_is_a_mismatch_with_its_pointer(gateway: str) -> None:
    note = requests.post(f"{gateway}/legacy/notes", json={"text": "original"}, timeout=10).json()
    assert _set(gateway, "notes.read", state="shadow", reason="compare")["share"] == 100
    answer = requests.get(
        f"{gateway}/legacy/notes/{note['id']}", headers={"X-Request-ID": "req-1"}, timeout=10
    )
    # The client reads the legacy answer.
    assert answer.json() == note
    found = wait_for(
        # None until compared: a count of 0 would be taken as the answer.
        lambda: (
            shadow if (shadow := _shadow(gateway, "notes.read"))["counts"]["compared"] else None
        ),
        "the comparison",
    )
    assert found["counts"] == {
        "compared": 1,
        "matched": 0,
        "mismatched": 1,
        "errored": 0,
        "dropped": 0,
    }
    [mismatch] = found["mismatches"]
    assert (mismatch["request_id"], mismatch["method"]) == ("req-1", "GET")
    assert mismatch["path"] == f"/legacy/notes/{note['id']}"
    assert mismatch["differences"] == [
        {"part": "body", "pointer": "/text", "primary": "original", "shadow": "not the same"},
        {"part": "body", "pointer": "/owner", "shadow": "[redacted]"},
    ]
    assert _metric(gateway, "notes.read", "mismatched") == 1
    listed = requests.get(f"{gateway}/_gateway/routes", headers=AUTH, timeout=10).json()
    [read] = [route for route in listed["routes"] if route["id"] == "notes.read"]
    assert read["shadow"]["mismatched"] == 1


def test_a_share_of_zero_shadows_nothing_and_a_share_is_a_percentage(gateway: str) -> None:
    note = requests.post(f"{gateway}/legacy/notes", json={"text": "x"}, timeout=10).json()
    _set(gateway, "notes.read", state="shadow", share=0)
    assert requests.get(f"{gateway}/legacy/notes/{note['id']}", timeout=10).status_code == 200
    answer = requests.patch(
        f"{gateway}/_gateway/routes/notes.read", json={"share": 101}, headers=AUTH, timeout=10
    )
    assert answer.status_code == 422
    assert _shadow(gateway, "notes.read")["counts"]["compared"] == 0
    assert _shadow(gateway, "notes.read")["share"] == 0


def test_only_a_route_in_shadow_is_shadowed(gateway: str) -> None:
    note = requests.post(f"{gateway}/legacy/notes", json={"text": "x"}, timeout=10).json()
    path = f"{gateway}/legacy/notes/{note['id']}"
    _set(gateway, "notes.read", state="legacy", share=100)
    assert requests.get(path, headers={"X-Request-ID": "in-legacy"}, timeout=10).ok
    _set(gateway, "notes.read", state="shadow", reason="compare")
    assert requests.get(path, headers={"X-Request-ID": "in-shadow"}, timeout=10).ok
    found = wait_for(
        lambda: (
            shadow if (shadow := _shadow(gateway, "notes.read"))["counts"]["compared"] else None
        ),
        "the comparison",
    )
    assert [mismatch["request_id"] for mismatch in found["mismatches"]] == ["in-shadow"]


def test_work_over_the_concurrency_or_time_budget_is_dropped(gateway: str) -> None:
    RELEASE.clear()
    _set(gateway, "notes.list", state="shadow")
    # The first shadow call hangs and holds the only slot; the second finds none.
    for _ in range(2):
        assert requests.get(f"{gateway}/legacy/notes", timeout=10).status_code == 200
    wait_for(
        lambda: _shadow(gateway, "notes.list")["counts"]["dropped"] == 1, "a drop for concurrency"
    )
    # The first one's budget (0.5 s) runs out: dropped too.
    wait_for(lambda: _shadow(gateway, "notes.list")["counts"]["dropped"] == 2, "a drop for time")
    assert _metric(gateway, "notes.list", "dropped") == 2
    RELEASE.set()


def _legacy_threads_busy(base: str) -> int:
    busy: int = requests.get(f"{base}/health", timeout=10).json()["stacks"]["legacy"]["pool"][
        "busy"
    ]
    return busy


def test_a_shadow_call_waits_until_no_client_request_is_in_flight(gateway: str) -> None:
    note = requests.post(f"{gateway}/legacy/notes", json={"text": "x"}, timeout=10).json()
    _set(gateway, "notes.read", state="shadow")
    with ThreadPoolExecutor(1) as pool:
        # Another client's request, in flight for four times the shadow budget (0.5 s).
        slow = pool.submit(
            requests.get, f"{gateway}/legacy/slow", params={"seconds": 2}, timeout=10
        )
        wait_for(lambda: _legacy_threads_busy(gateway) >= 1, "the slow request in flight")
        assert requests.get(f"{gateway}/legacy/notes/{note['id']}", timeout=10).status_code == 200
        # No idle moment came within the budget: the shadow call never started.
        wait_for(lambda: _shadow(gateway, "notes.read")["counts"]["dropped"] == 1, "the drop")
        assert _shadow(gateway, "notes.read")["counts"]["compared"] == 0
        assert slow.result().status_code == 200
    # With no other client in flight, the next one is shadowed (`different`: a mismatch).
    assert requests.get(f"{gateway}/legacy/notes/{note['id']}", timeout=10).status_code == 200
    wait_for(lambda: _shadow(gateway, "notes.read")["counts"]["mismatched"] == 1, "the compare")
    assert _shadow(gateway, "notes.read")["counts"]["dropped"] == 1


def test_a_budget_of_zero_drops_every_call() -> None:
    shadow = Shadow(max_concurrency=4, timeout_s=0, keep_mismatches=1)
    route = LedgerRoute("r", "GET", "/r", "GET", "/r", adapter=different)
    captured = Captured(status=200, complete=True)
    assert shadow.wanted("GET", 100) and not shadow.wanted("POST", 100)
    shadow.submit(route, {}, {"method": "GET"}, captured, v2=different, primary=different)  # type: ignore[arg-type]
    assert shadow.results.counts("r") == Counts(dropped=1)
    assert shadow.in_flight == 0


def _json_app(bodies: list[dict[str, Any]]) -> ASGIApp:
    """An app that answers each call with the next of `bodies`, as a table read over time."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps(bodies.pop(0)).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _adapter_of(app: ASGIApp) -> Any:
    async def adapter(
        scope: Scope, receive: Receive, send: Send, *, params: Mapping[str, Any], v2: ASGIApp
    ) -> None:
        await app(scope, receive, send)

    return adapter


async def _shadowed(
    primary_again: dict[str, Any],
    shadow_body: dict[str, Any],
    shadow_again: dict[str, Any] | None = None,
) -> Counts:
    """The primary answered {stock: 5, name: "lamp"}; the shadow, the primary's second
    answer and the shadow's second answer (by default its first) are given."""
    shadow = Shadow(max_concurrency=1, timeout_s=5, keep_mismatches=5)
    bodies = [shadow_body, shadow_body if shadow_again is None else shadow_again]
    route = LedgerRoute("r", "GET", "/r", "GET", "/r", adapter=_adapter_of(_json_app(bodies)))
    first = json.dumps({"stock": 5, "name": "lamp"}).encode()
    captured = Captured(
        status=200,
        headers=[(b"content-type", b"application/json")],
        chunks=[first],
        complete=True,
    )
    primary = _json_app([primary_again])
    shadow.submit(route, {}, {"method": "GET", "path": "/r"}, captured, v2=primary, primary=primary)
    await shadow.join()
    return shadow.results.counts("r")


def test_a_field_the_primary_changed_meanwhile_is_noise() -> None:
    # An order took stock between the primary's answer and the shadow's: the primary's own
    # second answer differs there too, so the difference is noise, not a mismatch.
    counts = asyncio.run(_shadowed({"stock": 4, "name": "lamp"}, {"stock": 4, "name": "lamp"}))
    assert counts == Counts(matched=1)


def test_a_difference_the_primary_does_not_make_is_a_mismatch() -> None:
    # The primary answers the same twice: the shadow's other name is a real difference, even
    # beside a field (stock) that changed meanwhile.
    counts = asyncio.run(_shadowed({"stock": 4, "name": "lamp"}, {"stock": 4, "name": "desk"}))
    assert counts == Counts(mismatched=1)


def test_a_field_changed_and_changed_back_meanwhile_is_noise() -> None:
    # Stock 5 in the primary's answer; a cancel gave one back before the shadow read 6, and
    # an order took it again before the primary was asked again (5). The primary's own two
    # answers agree, but the two sides asked again at once agree as well: noise.
    counts = asyncio.run(
        _shadowed(
            {"stock": 5, "name": "lamp"},
            {"stock": 6, "name": "lamp"},
            shadow_again={"stock": 5, "name": "lamp"},
        )
    )
    assert counts == Counts(matched=1)


def test_a_call_waits_for_an_idle_moment_only_so_long() -> None:
    async def shadowed(wait_for_idle_s: float) -> Counts:
        shadow = Shadow(
            max_concurrency=1, timeout_s=0.5, keep_mismatches=1, wait_for_idle_s=wait_for_idle_s
        )
        body = {"stock": 5, "name": "lamp"}
        route = LedgerRoute("r", "GET", "/r", "GET", "/r", adapter=_adapter_of(_json_app([body])))
        captured = Captured(
            status=200,
            headers=[(b"content-type", b"application/json")],
            chunks=[json.dumps(body).encode()],
            complete=True,
        )
        # A client request in flight for as long as the call has.
        shadow.client_arrived()
        primary = _json_app([])
        shadow.submit(
            route, {}, {"method": "GET", "path": "/r"}, captured, v2=primary, primary=primary
        )
        await shadow.join()
        return shadow.results.counts("r")

    # Not idle by the end of its wait: it starts anyway, and is compared.
    assert asyncio.run(shadowed(0.01)) == Counts(matched=1)
    # Waiting for idleness for longer than its budget: dropped.
    assert asyncio.run(shadowed(10)) == Counts(dropped=1)
