"""The legacy half of the contract, run a second time with every paired route in `v2`.

`legacy-on-v2` is a legacy client of a second gateway over the same database, where the
ledger serves every paired route through its adapter: the v2 code answers, Flask is not
called. The tests are the legacy ones, unchanged; the ones expected to tell the
difference are listed in `ON_V2_DIFFERENCES`, with the reason, and must fail there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from gateway.ledger.memory import MemoryStatuses
from gateway.ledger.model import RouteState, RouteStatus
from shop.app import build_pair
from shop.settings import ShopSettings
from tests.support import Stack

LEGACY_ON_V2 = "legacy-on-v2"

# test name (without parameters) -> why a legacy client can tell v2 serves it.
ON_V2_DIFFERENCES: dict[str, str] = {}


def all_paired_in_v2(pair_ledger: object) -> MemoryStatuses:
    from gateway.ledger.model import Ledger

    assert isinstance(pair_ledger, Ledger)
    v2 = RouteStatus(state=RouteState.V2)
    return MemoryStatuses(
        pair_ledger,
        {route.id: v2 for route in pair_ledger.routes if route.adapter is not None},
    )


@pytest.fixture(scope="session")
def gateway_on_v2(settings: ShopSettings) -> Iterator[BackgroundServer]:
    pair = build_pair(settings)
    assert pair.ledger is not None
    app = create_gateway(settings, pair, statuses=all_paired_in_v2(pair.ledger))
    with BackgroundServer(app, settings=settings) as server:
        yield server


def _client(request: pytest.FixtureRequest, name: str, tokens: dict[str, str]) -> Stack:
    if name != LEGACY_ON_V2:
        gateway: BackgroundServer = request.getfixturevalue("gateway")
        return Stack(name, gateway.url, tokens)
    reason = ON_V2_DIFFERENCES.get(request.node.originalname)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    on_v2: BackgroundServer = request.getfixturevalue("gateway_on_v2")
    return Stack("legacy", on_v2.url, tokens)


@pytest.fixture(params=["legacy", "v2", LEGACY_ON_V2])
def stack(request: pytest.FixtureRequest, tokens: dict[str, str]) -> Stack:
    """One of the stacks: legacy, v2, or legacy with every paired route served by v2."""
    return _client(request, request.param, tokens)


@pytest.fixture(params=["legacy", LEGACY_ON_V2])
def legacy(request: pytest.FixtureRequest, tokens: dict[str, str]) -> Stack:
    return _client(request, request.param, tokens)
