"""Combinations of route states the contract tests run in, and the clients that reach them.

Each combination names which paired routes the legacy door serves with v2 (the others stay
on Flask); its gateway is `tests/contract/conftest.py`'s `gateway_in(name)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import pytest

from gateway.background_server import BackgroundServer
from gateway.ledger.memory import MemoryStatuses
from gateway.ledger.model import Ledger, LedgerRoute, RouteState, RouteStatus
from tests.support import Stack

LEGACY_ON_V2: Final = "legacy-on-v2"
READS_ON_V2: Final = "legacy-reads-on-v2"
WRITES_ON_V2: Final = "legacy-writes-on-v2"

# A combination of states -> which paired routes it serves with v2 (the others: Flask).
# Reads are the GET routes, writes every other method (the login among them).
COMBINATIONS: dict[str, Callable[[LedgerRoute], bool]] = {
    LEGACY_ON_V2: lambda route: True,
    READS_ON_V2: lambda route: route.legacy_method == "GET",
    WRITES_ON_V2: lambda route: route.legacy_method != "GET",
}

# test name (without parameters) -> why a legacy client can tell v2 serves it.
ON_V2_DIFFERENCES: dict[str, str] = {}

GatewayIn = Callable[[str], BackgroundServer]


def statuses_in(ledger: Ledger, combination: str) -> MemoryStatuses:
    """Statuses with the combination's paired routes in `v2`, every other route `legacy`."""
    on_v2 = COMBINATIONS[combination]
    v2 = RouteStatus(state=RouteState.V2)
    return MemoryStatuses(
        ledger,
        {route.id: v2 for route in ledger.routes if route.adapter is not None and on_v2(route)},
    )


def legacy_client(request: pytest.FixtureRequest, name: str, tokens: dict[str, str]) -> Stack:
    """A client of the door `name` ("legacy", "v2"), or a legacy client of the gateway
    serving the combination `name`."""
    if name not in COMBINATIONS:
        gateway: BackgroundServer = request.getfixturevalue("gateway")
        return Stack(name, gateway.url, tokens)
    reason = ON_V2_DIFFERENCES.get(request.node.originalname)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    gateway_in: GatewayIn = request.getfixturevalue("gateway_in")
    return Stack("legacy", gateway_in(name).url, tokens)
