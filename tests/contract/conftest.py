"""The legacy half of the contract, run again with the paired routes served by v2.

`legacy-on-v2` is a legacy client of a second gateway over the same database, where the
ledger serves every paired route through its adapter: the v2 code answers, Flask is not
called. The tests are the legacy ones, unchanged; the ones expected to tell the
difference are listed in `ON_V2_DIFFERENCES` (tests/contract/combinations.py), with the
reason, and must fail there.

The cross-stack tests also run in the mixed combinations (`COMBINATIONS`): reads on v2
and writes on Flask, and the reverse, each on a gateway of its own, started when a test
first asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from shop.app import build_pair
from shop.settings import ShopSettings
from tests.contract.combinations import LEGACY_ON_V2, GatewayIn, legacy_client, statuses_in
from tests.support import Stack


@pytest.fixture(scope="session")
def gateway_in(settings: ShopSettings) -> Iterator[GatewayIn]:
    """A gateway over the session's database serving a combination of states, by its
    name: each started once, when first asked for (a module that needs none starts none)."""
    started: dict[str, BackgroundServer] = {}
    with ExitStack() as running:

        def serving(combination: str) -> BackgroundServer:
            if combination not in started:
                pair = build_pair(settings)
                assert pair.ledger is not None
                statuses = statuses_in(pair.ledger, combination)
                app = create_gateway(settings, pair, statuses=statuses)
                started[combination] = running.enter_context(
                    BackgroundServer(app, settings=settings)
                )
            return started[combination]

        yield serving


@pytest.fixture(params=["legacy", "v2", LEGACY_ON_V2])
def stack(request: pytest.FixtureRequest, tokens: dict[str, str]) -> Stack:
    """One of the stacks: legacy, v2, or legacy with every paired route served by v2."""
    return legacy_client(request, request.param, tokens)


@pytest.fixture(params=["legacy", LEGACY_ON_V2])
def legacy(request: pytest.FixtureRequest, tokens: dict[str, str]) -> Stack:
    return legacy_client(request, request.param, tokens)
