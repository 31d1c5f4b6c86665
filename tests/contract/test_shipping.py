"""Shipping quotes against a real carrier stub on a real port: success and every failure."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import pytest
import requests

from gateway.background_server import BackgroundServer
from shop.app import create_app
from shop.carrier_stub import CarrierBehaviour, create_carrier_app
from tests.carriers import (
    CountingCarrier,
    GatedCarrier,
    SilentHangUp,
    hanging_up_carrier,
    oversized_carrier,
    redirecting_carrier,
    trickling_carrier,
)
from tests.conftest import make_settings
from tests.support import STACKS, Stack, assert_error, order_to_quote


def test_a_quote_comes_from_the_carrier(stack: Stack, unique: str) -> None:
    order_id = order_to_quote(stack, unique)
    answer = stack.get("/shipping/quote", params={"order_id": order_id}, user="viewer")
    assert answer.status_code == 200, answer.text
    # The stub charges 4.90 plus 0.25 a unit.
    assert answer.json() == {
        "order_id": order_id,
        "carrier": "stub-express",
        "amount": "5.40",
        "currency": "EUR",
        "eta_days": 2,
    }


def test_quotes_need_read_an_order_and_an_id(stack: Stack) -> None:
    assert_error(stack, stack.get("/shipping/quote", params={"order_id": 1}), 401)
    assert_error(
        stack, stack.get("/shipping/quote", params={"order_id": 999999999}, user="viewer"), 404
    )
    assert_error(stack, stack.get("/shipping/quote", user="viewer"), stack.invalid_status)
    bad = stack.get("/shipping/quote", params={"order_id": "x"}, user="viewer")
    assert_error(stack, bad, stack.invalid_status)


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _stub(behaviour: CarrierBehaviour) -> Callable[[], Any]:
    return lambda: create_carrier_app(behaviour)


CARRIER_TIMEOUT_S = 0.3
# What a quote may take beyond the carrier timeout: the token check and the order's read.
MARGIN_S = 0.5
FAULTS: dict[str, tuple[Callable[[], Any] | None, int]] = {
    "slow": (_stub(CarrierBehaviour(latency_ms=2000)), 504),
    # Headers at once, then a byte every 50 ms: no single read waits long.
    "trickling": (lambda: trickling_carrier(0.05), 504),
    "failing": (_stub(CarrierBehaviour(failure_rate=1.0)), 502),
    "garbage": (_stub(CarrierBehaviour(invalid_rate=1.0)), 502),
    "hanging up": (lambda: hanging_up_carrier, 502),
    "oversized": (lambda: oversized_carrier, 502),
    # Reads the request, closes the connection: unreachable (502), not slow (504).
    "hanging up at once": (SilentHangUp, 502),
    "refused": (None, 502),
}


@pytest.fixture(params=list(FAULTS))
def faulty_gateway(request: pytest.FixtureRequest, database_url: str) -> Iterator[tuple[str, int]]:
    """A gateway whose carrier is slow, failing, answering garbage, or not there at all."""
    carrier, status = FAULTS[request.param]
    with ExitStack() as stack:
        if carrier is None:
            carrier_url = _closed_port_url()
        else:
            made = carrier()
            server = made if isinstance(made, SilentHangUp) else BackgroundServer(made)
            carrier_url = stack.enter_context(server).url
        settings = make_settings(
            database_url, carrier_url=carrier_url, carrier_timeout_s=CARRIER_TIMEOUT_S
        )
        gateway = stack.enter_context(BackgroundServer(create_app(settings)))
        yield gateway.url, status


@pytest.mark.parametrize("name", STACKS)
def test_carrier_faults_map_to_502_and_504(
    faulty_gateway: tuple[str, int], tokens: dict[str, str], name: str, unique: str
) -> None:
    url, status = faulty_gateway
    stack = Stack(name, url, tokens)
    order_id = order_to_quote(stack, unique)
    started = time.monotonic()
    answer = stack.get("/shipping/quote", params={"order_id": order_id}, user="viewer")
    elapsed = time.monotonic() - started
    assert_error(stack, answer, status)
    assert elapsed < CARRIER_TIMEOUT_S + MARGIN_S, f"the answer took {elapsed:.2f} s"
    # The gateway is healthy afterwards: the health check and the same stack answer.
    assert stack.get("/health").status_code == 200
    assert stack.get(f"/orders/{order_id}", user="viewer").status_code == 200


@pytest.fixture(scope="module")
def redirected_gateway(database_url: str) -> Iterator[tuple[str, CountingCarrier]]:
    """A gateway whose carrier redirects (307) to another that would answer a valid rate."""
    elsewhere = CountingCarrier()
    with ExitStack() as stack:
        target = stack.enter_context(BackgroundServer(elsewhere))
        redirector = redirecting_carrier(f"{target.url}/v1/rates")
        carrier = stack.enter_context(BackgroundServer(redirector))
        settings = make_settings(database_url, carrier_url=carrier.url)
        gateway = stack.enter_context(BackgroundServer(create_app(settings)))
        yield gateway.url, elsewhere


@pytest.mark.parametrize("name", STACKS)
def test_a_carrier_redirect_is_a_502_and_is_not_followed(
    redirected_gateway: tuple[str, CountingCarrier], tokens: dict[str, str], name: str, unique: str
) -> None:
    url, elsewhere = redirected_gateway
    stack = Stack(name, url, tokens)
    order_id = order_to_quote(stack, unique)
    answer = stack.get("/shipping/quote", params={"order_id": order_id}, user="viewer")
    assert_error(stack, answer, 502)
    assert elsewhere.calls == 0


PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]


def test_proxy_variables_do_not_reroute_the_carrier_call(
    stack: Stack, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = order_to_quote(stack, unique)
    # The gateway's threads run in this process and read this environment at each call.
    dead_proxy = _closed_port_url()
    for variable in PROXY_VARIABLES:
        monkeypatch.setenv(variable, dead_proxy)
        monkeypatch.setenv(variable.lower(), dead_proxy)
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    stack.http.trust_env = False  # the test's own calls go straight to the gateway
    answer = stack.get("/shipping/quote", params={"order_id": order_id}, user="viewer")
    assert answer.status_code == 200, answer.text
    assert answer.json()["carrier"] == "stub-express"


# More quotes in flight at once than the default pool of httpx (or aiohttp) would open
# connections for (100): past it, quotes would queue for a connection, not for the carrier.
IN_FLIGHT = 120


def test_v2_keeps_more_carrier_calls_in_flight_than_a_default_pool(
    database_url: str, tokens: dict[str, str], unique: str
) -> None:
    carrier = GatedCarrier()
    with ExitStack() as stack:
        carrier_url = stack.enter_context(BackgroundServer(carrier)).url
        settings = make_settings(database_url, carrier_url=carrier_url, carrier_timeout_s=20.0)
        gateway = stack.enter_context(BackgroundServer(create_app(settings)))
        v2 = Stack("v2", gateway.url, tokens)
        order_id = order_to_quote(v2, unique)
        url = f"{v2.url}/shipping/quote?order_id={order_id}"
        headers = {"Authorization": f"Bearer {tokens['viewer']}"}
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            try:
                futures = [
                    pool.submit(requests.get, url, headers=headers, timeout=30)
                    for _ in range(IN_FLIGHT)
                ]
                # Every quote reaches the carrier while none has been answered yet.
                all_arrived = carrier.wait_for_arrivals(IN_FLIGHT, timeout_s=20.0)
                arrived = carrier.arrived
            finally:
                carrier.open_gate()
            statuses = [future.result().status_code for future in futures]
        assert all_arrived, f"only {arrived} of {IN_FLIGHT} quotes reached the carrier at once"
        assert statuses == [200] * IN_FLIGHT
