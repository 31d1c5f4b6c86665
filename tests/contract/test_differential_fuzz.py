"""Differential fuzzing through the ledger: every paired route, both implementations.

Two gateways over one database of this module's own: in one every route is `legacy`
(Flask answers), in the other every paired route is `v2` (the adapter serves the legacy
URL with the v2 code). Each drawn request (tests/contract/fuzz_requests.py) is sent to
both, each side starting from the same rows (tests/contract/differential.py puts them
back), and what a legacy client and the database could tell apart is a failure, unless
it is a deliberate difference listed in `DELIBERATE` with its reason (README,
"Deliberate differences").

`make test` runs a small derandomized set per route; `make fuzz` runs it at length.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hypothesis import given
from sqlalchemy import Engine

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from gateway.ledger.memory import MemoryStatuses
from shop.app import build_pair
from shop.ledger import shop_ledger
from shop_core.database import create_sync_engine, temporary_postgres_database
from tests.conftest import POSTGRES_ADMIN_URL, _prepare, make_settings
from tests.contract.combinations import LEGACY_ON_V2, statuses_in
from tests.contract.differential import (
    Answer,
    Request,
    Rows,
    differences,
    read_rows,
    restore_rows,
    send,
)
from tests.contract.fuzz_requests import legacy_requests
from tests.fuzzing import fuzz_settings
from tests.support import bearer_for

EXAMPLES = 12
PAIRED = [route.id for route in shop_ledger().routes if route.adapter is not None]


def _credentials_after_an_unreadable_body(request: Request, legacy: Answer, v2: Answer) -> bool:
    # Flask checks the token first; FastAPI reads the body before it resolves any
    # dependency, the credentials among them. Both refuse the request and change nothing.
    return (
        legacy.status in (401, 403)
        and v2.status == 400
        and isinstance(v2.body, dict)
        and v2.body.get("error", {}).get("code") == "bad_request"
        and _json_object(request.body) is None
        and legacy.rows == v2.rows
    )


def _json_object(body: bytes | None) -> dict[str, Any] | None:
    """The body's JSON object, if it is one of Unicode text (no lone surrogate)."""
    try:
        value = json.loads(body or b"")
        json.dumps(value, ensure_ascii=False).encode()
    except (ValueError, RecursionError, UnicodeEncodeError):
        return None
    return value if isinstance(value, dict) else None


def _an_empty_login_field(request: Request, legacy: Answer, v2: Answer) -> bool:
    # The OAuth2 form v2 reads takes an empty field for a missing one.
    body = _json_object(request.body) or {}
    return (
        "" in (body.get("username"), body.get("password"))
        and legacy.status in (400, 401)
        and v2.status == 400
        and isinstance(v2.body, dict)
        and v2.body.get("error", {}).get("code") == "validation_error"
    )


# Differences the contract keeps on purpose (README, "Deliberate differences" and "Moving a
# route"): (why, routes, test). `test(request, legacy, v2)` says whether a difference is it.
Deliberate = Callable[[Request, Answer, Answer], bool]
DELIBERATE: list[tuple[str, frozenset[str], Deliberate]] = [
    (
        "a body that is no JSON object, sent without a token or its scope: Flask says 401 "
        "or 403 (credentials first), v2 400 bad_request (the body first)",
        frozenset(route for route in PAIRED if route.endswith((".create", ".replace", ".place"))),
        _credentials_after_an_unreadable_body,
    ),
    (
        "an empty username or password: Flask tries the login (401, a failure the throttle "
        "counts), v2's OAuth2 form names the field as missing (400 validation_error)",
        frozenset({"auth.token"}),
        _an_empty_login_field,
    ),
]


@dataclass
class Sides:
    legacy: str
    v2: str
    engine: Engine
    start: Rows
    bearer: Callable[[str], str]


@pytest.fixture(scope="module")
def sides(
    database_url: str, carrier: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sides]:
    """The two gateways over a fuzz database of the session's backend, and its first rows."""
    with _fuzz_database(database_url, tmp_path_factory) as url:
        _prepare(url)
        settings = make_settings(url, carrier_url=carrier.url, carrier_timeout_s=2.0)
        ledger = shop_ledger()
        legacy_app = create_gateway(settings, build_pair(settings), statuses=MemoryStatuses(ledger))
        v2_app = create_gateway(
            settings, build_pair(settings), statuses=statuses_in(ledger, LEGACY_ON_V2)
        )
        engine = create_sync_engine(url, pool_size=1)
        tokens = {
            user: bearer_for(settings, user, scopes)["Authorization"].removeprefix("Bearer ")
            for user, scopes in (
                ("admin", "read write admin"),
                ("clerk", "read write"),
                ("viewer", "read"),
            )
        }
        with (
            BackgroundServer(legacy_app, settings=settings) as legacy,
            BackgroundServer(v2_app, settings=settings) as v2,
        ):
            _orders(legacy.url + "/legacy", tokens["clerk"])
            yield Sides(legacy.url, v2.url, engine, read_rows(engine), tokens.__getitem__)
        engine.dispose()


def _fuzz_database(database_url: str, tmp: pytest.TempPathFactory) -> AbstractContextManager[str]:
    """A new database on the session's backend: its rows are put back before every request."""
    if database_url.startswith("sqlite"):
        return nullcontext(f"sqlite:///{tmp.mktemp('fuzz') / 'fuzz.db'}")
    assert POSTGRES_ADMIN_URL is not None
    return temporary_postgres_database(POSTGRES_ADMIN_URL)


def _orders(url: str, token: str) -> None:
    """Order 1 (placed) holds product 1 for customer 1; order 2 is cancelled."""
    headers = {"Authorization": f"Bearer {token}"}
    for customer in (1, 2):
        body = {"customer_id": customer, "items": [{"product_id": 1, "quantity": 2}]}
        placed = requests.post(f"{url}/orders", json=body, headers=headers, timeout=10)
        assert placed.status_code == 201, placed.text
    cancelled = requests.post(f"{url}/orders/2/cancel", headers=headers, timeout=10)
    assert cancelled.status_code == 200, cancelled.text


def run_both(sides: Sides, request: Request, http: requests.Session) -> tuple[Answer, Answer]:
    """The request on each side, each from the module's first rows."""
    answers = []
    for base in (sides.legacy, sides.v2):
        if read_rows(sides.engine) != sides.start:
            restore_rows(sides.engine, sides.start)
        answers.append(send(http, base + "/legacy", request, sides.engine))
    return answers[0], answers[1]


@pytest.mark.parametrize("route_id", PAIRED)
def test_both_implementations_answer_alike(sides: Sides, route_id: str) -> None:
    http = requests.Session()
    tried = deliberate = 0

    @fuzz_settings(default_examples=EXAMPLES)
    @given(request=legacy_requests(route_id, sides.bearer))
    def check(request: Request) -> None:
        nonlocal tried, deliberate
        tried += 1
        legacy, v2 = run_both(sides, request, http)
        found = differences(sides.start, legacy, v2)
        deliberate_here = (test for _, routes, test in DELIBERATE if route_id in routes)
        if found and any(test(request, legacy, v2) for test in deliberate_here):
            deliberate += 1
            return
        assert not found, f"{request.describe()}\n" + "\n".join(found)

    check()
    print(f"{route_id}: {tried} requests, {deliberate} deliberate differences")
