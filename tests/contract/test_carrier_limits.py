"""The carrier as a quota-bound upstream: v2 keeps to its quota and tries transient
failures again; legacy makes one call and gives up, as it always did.

Each test runs a real carrier stub (or a misbehaving carrier) and a real gateway on real
ports; what is checked is what a client gets and what the carrier saw.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gateway.background_server import BackgroundServer
from loadtests.servers import Server, start_server
from shop.app import create_app
from shop.carrier_stub import CarrierBehaviour, create_carrier_app
from tests.carriers import InFlightCarrier, StatusCarrier
from tests.conftest import make_settings
from tests.support import Stack, assert_error, order_to_quote
from v2_fastapi.throttle import Limits


@contextmanager
def _gateway(
    database_url: str, carrier: Any, **settings: Any
) -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    """The carrier (an ASGI app) and a gateway calling it, both serving."""
    with ExitStack() as stack:
        carrier_server = stack.enter_context(BackgroundServer(carrier))
        gateway = stack.enter_context(_gateway_for(database_url, carrier_server.url, **settings))
        yield gateway, carrier_server


@contextmanager
def _gateway_for(
    database_url: str, carrier_url: str, **settings: Any
) -> Iterator[BackgroundServer]:
    values = {"carrier_url": carrier_url, "carrier_timeout_s": 2.0, **settings}
    with BackgroundServer(create_app(make_settings(database_url, **values))) as gateway:
        yield gateway


def _stats(carrier: BackgroundServer | Server) -> dict[str, Any]:
    answer = requests.get(f"{carrier.url}/stats", timeout=5)
    answer.raise_for_status()
    stats: dict[str, Any] = answer.json()
    return stats


def _metrics_text(gateway: BackgroundServer) -> str:
    answer = requests.get(f"{gateway.url}/metrics", timeout=5)
    answer.raise_for_status()
    return answer.text


def _quotes_at_once(stack: Stack, order_id: int, count: int) -> list[requests.Response]:
    url = f"{stack.url}/shipping/quote?order_id={order_id}"
    headers = {"Authorization": f"Bearer {stack.tokens['viewer']}"}
    with ThreadPoolExecutor(count) as pool:
        futures = [
            pool.submit(requests.get, url, headers=headers, timeout=30) for _ in range(count)
        ]
        return [future.result() for future in futures]


def _retry_after(answer: requests.Response) -> int:
    value = answer.headers.get("Retry-After", "")
    assert value.isdigit() and int(value) >= 1, f"Retry-After {value!r}"
    return int(value)


# The case: a carrier that answers 429 past 50 calls a second, and v2 set to 40 a
# second. A burst of 1 leaves room under the carrier's quota for the jitter between v2's
# clock and the carrier's arrivals: calls whose turns were spread over a quarter of a
# second more than one (the gateway's process held up on a busy machine, then sending them
# together) still arrive within the quota. With a burst of 5 a hold-up of 150 ms was enough.
QUOTA_RPS = 50
MAX_RPS = 40
BURST = 1
CONCURRENT_QUOTES = 100


def test_v2_keeps_to_the_carrier_quota_under_100_concurrent_quotes(
    database_url: str, tokens: dict[str, str], unique: str, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        # The stub in a process of its own, as a carrier is: its clock is not held up by
        # the gateway's threads in this one.
        options = ("--latency-ms", "5", "--quota-rps", str(QUOTA_RPS))
        carrier = start_server(
            stack, "carrier", options, env=os.environ, cores=(), log=tmp_path / "carrier.log"
        )
        # A one-second deadline: the quotes are over in about a second.
        settings = {"carrier_max_rps": MAX_RPS, "carrier_burst": BURST, "carrier_timeout_s": 1.0}
        gateway = stack.enter_context(_gateway_for(database_url, carrier.url, **settings))
        v2 = Stack("v2", gateway.url, tokens)
        order_id = order_to_quote(v2, unique)
        answers = _quotes_at_once(v2, order_id, CONCURRENT_QUOTES)
        stats = _stats(carrier)
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 503}, statuses
    # The carrier never said no: it was never asked more than its quota in a second (v2
    # sends at most 41 in any second by its own clock; the carrier's count of arrivals can
    # be a few more, as the network and the processes' scheduling bunch them up).
    assert stats["statuses"] == {"200": statuses.count(200)}, stats
    assert stats["busiest_second"] <= QUOTA_RPS, stats
    # Those over the rate were told when to come back, and the carrier never saw them.
    refused = [answer for answer in answers if answer.status_code == 503]
    assert refused, "every quote fitted in the rate: the test shows nothing"
    for answer in refused:
        assert_error(v2, answer, 503)
        _retry_after(answer)
    # Within its one second, v2 used its burst and its rate.
    assert statuses.count(200) >= BURST + MAX_RPS // 2, statuses


def test_with_a_max_wait_quotes_wait_no_longer_for_their_turn(
    database_url: str, tokens: dict[str, str], unique: str
) -> None:
    # One call a second: the first of five quotes at once goes, the next turn is a second
    # away, past the 50 ms a quote may wait (though within its 2 s deadline).
    stub = create_carrier_app(CarrierBehaviour())
    settings = {"carrier_max_rps": 1, "carrier_burst": 1, "carrier_max_wait_s": 0.05}
    with _gateway(database_url, stub, **settings) as (gateway, carrier):
        v2 = Stack("v2", gateway.url, tokens)
        order_id = order_to_quote(v2, unique)
        answers = _quotes_at_once(v2, order_id, 5)
        stats = _stats(carrier)
    assert sorted(answer.status_code for answer in answers) == [200, 503, 503, 503, 503]
    for answer in answers:
        if answer.status_code == 503:
            assert _retry_after(answer) == 1
    assert stats["received"] == 1


def test_v2_calls_the_carrier_at_most_max_concurrency_at_once(
    database_url: str, tokens: dict[str, str], unique: str
) -> None:
    carrier = InFlightCarrier(latency_s=0.2)
    with _gateway(database_url, carrier, carrier_max_concurrency=2) as (gateway, _):
        v2 = Stack("v2", gateway.url, tokens)
        order_id = order_to_quote(v2, unique)
        statuses = [answer.status_code for answer in _quotes_at_once(v2, order_id, 6)]
    assert statuses == [200] * 6
    assert carrier.most_in_flight == 2


@pytest.fixture(scope="module")
def failing_carrier(database_url: str) -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    """A gateway whose carrier fails every third call with 503."""
    stub = create_carrier_app(CarrierBehaviour(failure_rate=1 / 3))
    with _gateway(database_url, stub) as servers:
        yield servers


QUOTES = 12


def test_v2_quotes_survive_a_carrier_that_fails_a_third_of_calls(
    failing_carrier: tuple[BackgroundServer, BackgroundServer],
    tokens: dict[str, str],
    unique: str,
) -> None:
    gateway, carrier = failing_carrier
    v2 = Stack("v2", gateway.url, tokens)
    order_id = order_to_quote(v2, unique)
    before = _stats(carrier)
    for _ in range(QUOTES):
        answer = v2.get("/shipping/quote", params={"order_id": order_id}, user="viewer")
        assert answer.status_code == 200, answer.text
    after = _stats(carrier)
    # The carrier did fail some of them: they were tried again.
    failed = after["statuses"].get("503", 0) - before["statuses"].get("503", 0)
    assert failed >= QUOTES // 3, (before, after)
    # /metrics counts the attempts: every quote ended ok, the failed attempts were retried.
    samples = {
        (sample.labels.get("outcome"), sample.name): sample.value
        for family in text_string_to_metric_families(
            requests.get(gateway.url + "/metrics", timeout=5).text
        )
        for sample in family.samples
        if sample.labels.get("upstream") == "carrier"
    }
    requests_total = "gateway_upstream_requests_total"
    assert samples[("ok", requests_total)] >= QUOTES
    assert samples[("retried", requests_total)] >= failed
    assert samples[(None, "gateway_upstream_duration_seconds_count")] >= QUOTES + failed


def test_legacy_quotes_fail_with_a_carrier_that_fails_a_third_of_calls(
    failing_carrier: tuple[BackgroundServer, BackgroundServer],
    tokens: dict[str, str],
    unique: str,
) -> None:
    gateway, _ = failing_carrier
    legacy = Stack("legacy", gateway.url, tokens)
    order_id = order_to_quote(legacy, unique)
    answers = [
        legacy.get("/shipping/quote", params={"order_id": order_id}, user="viewer")
        for _ in range(QUOTES)
    ]
    failed = [answer for answer in answers if answer.status_code != 200]
    # One call each, no retry: a third of them fail, as the carrier does.
    assert len(failed) == QUOTES // 3, [answer.status_code for answer in answers]
    for answer in failed:
        assert_error(legacy, answer, 502)


def test_v2_waits_out_a_carrier_429_within_its_deadline(
    database_url: str, tokens: dict[str, str], unique: str
) -> None:
    # One call a second: the second quote gets 429 with Retry-After: 1, which fits in the
    # two seconds of its deadline.
    stub = create_carrier_app(CarrierBehaviour(quota_rps=1))
    with _gateway(database_url, stub, carrier_timeout_s=2.0) as (gateway, carrier):
        v2 = Stack("v2", gateway.url, tokens)
        order_id = order_to_quote(v2, unique)
        for _ in range(2):
            answer = v2.get("/shipping/quote", params={"order_id": order_id}, user="viewer")
            assert answer.status_code == 200, answer.text
        assert _stats(carrier)["statuses"] == {"200": 2, "429": 1}


def test_a_carrier_429_past_the_deadline_pauses_every_call(
    database_url: str, tokens: dict[str, str], unique: str
) -> None:
    # The carrier's Retry-After (1 s) is past the deadline (0.5 s): the quote is 503 at
    # once, and so is the next one, which the carrier never sees.
    stub = create_carrier_app(CarrierBehaviour(quota_rps=1))
    with _gateway(database_url, stub, carrier_timeout_s=0.5) as (gateway, carrier):
        v2 = Stack("v2", gateway.url, tokens)
        order_id = order_to_quote(v2, unique)
        answers = [
            v2.get("/shipping/quote", params={"order_id": order_id}, user="viewer")
            for _ in range(3)
        ]
        stats = _stats(carrier)
    assert [answer.status_code for answer in answers] == [200, 503, 503]
    for answer in answers[1:]:
        assert_error(v2, answer, 503)
        assert _retry_after(answer) == 1
    assert stats["statuses"] == {"200": 1, "429": 1}


# What is not retried, and what is, up to GATEWAY_CARRIER_RETRIES (2) times: the carrier's
# status, the client's, and the calls the carrier gets.
ATTEMPTS = {
    "not found": (404, 502, 1),
    "bad request": (400, 502, 1),
    "429 without Retry-After": (429, 503, 1),
    "always 503": (503, 502, 3),
    "always 502": (502, 502, 3),
    "always 504": (504, 502, 3),
}


@pytest.mark.parametrize("case", list(ATTEMPTS))
def test_v2_retries_only_transient_failures_and_at_most_retries_times(
    database_url: str, tokens: dict[str, str], unique: str, case: str
) -> None:
    carrier_status, status, attempts = ATTEMPTS[case]
    carrier = StatusCarrier(carrier_status)
    with _gateway(database_url, carrier, carrier_retries=2) as (gateway, _):
        v2 = Stack("v2", gateway.url, tokens)
        order_id = order_to_quote(v2, unique)
        answer = v2.get("/shipping/quote", params={"order_id": order_id}, user="viewer")
    assert_error(v2, answer, status)
    assert carrier.calls == attempts


def test_an_invalid_rate_is_not_retried(
    database_url: str, tokens: dict[str, str], unique: str
) -> None:
    stub = create_carrier_app(CarrierBehaviour(invalid_rate=1.0))
    with _gateway(database_url, stub) as (gateway, carrier):
        v2 = Stack("v2", gateway.url, tokens)
        order_id = order_to_quote(v2, unique)
        answer = v2.get("/shipping/quote", params={"order_id": order_id}, user="viewer")
        stats = _stats(carrier)
    assert_error(v2, answer, 502)
    assert stats["received"] == 1


def test_the_stub_plays_a_quota_and_a_share_of_failures() -> None:
    order = {"order_id": 1, "items": [{"product_id": 1, "quantity": 2}], "total": "8.00"}
    stub = create_carrier_app(CarrierBehaviour(failure_rate=1 / 3, quota_rps=6))
    with BackgroundServer(stub) as carrier, requests.Session() as http:
        answers = [http.post(f"{carrier.url}/v1/rates", json=order, timeout=5) for _ in range(8)]
        stats = _stats(carrier)
    # Every third call admitted fails; past six in a second, 429 with Retry-After.
    assert [answer.status_code for answer in answers] == [200, 200, 503, 200, 200, 503, 429, 429]
    assert all(_retry_after(answer) == 1 for answer in answers[6:])
    assert stats == {
        "received": 8,
        "statuses": {"200": 4, "429": 2, "503": 2},
        "busiest_second": 8,
    }


def test_with_n_processes_each_takes_its_share_of_the_limits() -> None:
    limits = Limits.shared(max_rps=40, burst=10, max_concurrency=200, processes=4)
    assert limits == Limits(max_rps=10, burst=2, max_concurrency=50)
    assert Limits.shared(max_rps=None, burst=1, max_concurrency=3, processes=4) == Limits(
        max_rps=None, burst=1, max_concurrency=1
    )


def test_the_openapi_document_describes_the_quotes_503(gateway: BackgroundServer) -> None:
    document = requests.get(f"{gateway.url}/v2/openapi.json", timeout=10).json()
    responses = document["paths"]["/shipping/quote"]["get"]["responses"]
    assert "Retry-After" in responses["503"]["headers"]
    assert "quota" in responses["503"]["description"]
    assert set(responses["503"]["content"]) == {"application/problem+json"}
