"""The `legacy-shadow` arm: the legacy users against a gateway that shadows routes at 100 %.

The runner gives the arm's gateway an admin token of its own, and once it answers moves
the chosen routes (default: every route with an adapter whose legacy method is GET) to
`shadow` with a share of 100 through the admin API, as a team would. Each arm has a fresh
database, and the shop keeps its route statuses there, so no other arm is touched. After
the load, the gateway's shadow results (`GET /_gateway/routes`, and each route's
mismatches from `GET /_gateway/routes/{id}/shadow`) go into the report beside the arm.

The admin API counts per process: with `--server-workers` above 1 the figures are those
of the worker that answered, and the runner says so.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import requests

from loadtests.schema import ShadowMismatch, ShadowRoute
from loadtests.servers import ArmContext, SetupHook
from loadtests.shadow_report import SHADOW

FULL_SHARE = 100
# Once the load stops no shadow call starts, and each one in flight ends (matched,
# mismatched, errored or dropped) within the gateway's time budget
# (GATEWAY_SHADOW_TIMEOUT_S, 2 s by default): counts unchanged for longer are final.
SETTLE_QUIET_S = 2.5
SETTLE_MAX_S = 30.0
SETTLE_POLL_S = 0.5
# Mismatches kept per route in the report: enough to see the pattern.
KEPT_MISMATCHES = 3
_TIMEOUT_S = 10


def admin_token() -> str:
    return secrets.token_urlsafe(32)


def with_admin_token(setup: SetupHook | None, token: str) -> SetupHook:
    """The pair's set-up, and the admin token in the server's environment."""

    @contextmanager
    def setup_with_token(context: ArmContext) -> Iterator[Mapping[str, str]]:
        if setup is None:
            yield {"GATEWAY_ADMIN_TOKEN": token}
            return
        with setup(context) as env:
            yield {**env, "GATEWAY_ADMIN_TOKEN": token}

    return setup_with_token


def _call(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    answer = requests.request(method, url, json=body, headers=headers, timeout=_TIMEOUT_S)
    answer.raise_for_status()
    return answer.json()


def _routes(base: str, token: str) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = _call(f"{base}/_gateway/routes", token)["routes"]
    return routes


def chosen_routes(routes: Sequence[Mapping[str, Any]], wanted: Sequence[str]) -> list[str]:
    """`wanted` checked against the ledger, or (none given) every paired GET route."""
    if not wanted:
        return [r["id"] for r in routes if r["adapter"] and r["legacy"]["method"] == "GET"]
    paired = {r["id"] for r in routes if r["adapter"]}
    unknown = [route_id for route_id in wanted if route_id not in paired]
    if unknown:
        raise ValueError(f"--shadow-routes: no route with an adapter named {', '.join(unknown)}")
    return list(dict.fromkeys(wanted))


def start_shadowing(base: str, token: str, wanted: Sequence[str]) -> list[str]:
    """Move the chosen routes to `shadow` at 100 %; the ids moved."""
    route_ids = chosen_routes(_routes(base, token), wanted)
    if not route_ids:
        raise ValueError("no paired GET route to shadow")
    patch = {"state": "shadow", "share": FULL_SHARE, "reason": f"load test: the {SHADOW} arm"}
    for route_id in route_ids:
        _call(f"{base}/_gateway/routes/{route_id}", token, "PATCH", patch)
    served = {r["id"]: r for r in _routes(base, token)}
    wrong = [i for i in route_ids if served[i]["state"] != "shadow" or served[i]["share"] != 100]
    if wrong:
        raise RuntimeError(f"the gateway does not serve {', '.join(wrong)} in shadow at 100 %")
    return route_ids


def _counts(base: str, token: str, route_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    served = {r["id"]: r for r in _routes(base, token)}
    return {route_id: served[route_id]["shadow"] or {} for route_id in route_ids}


def shadow_results(base: str, token: str, route_ids: Sequence[str]) -> dict[str, ShadowRoute]:
    """Each route's shadow results once the calls still in flight have ended."""
    started = changed = time.monotonic()
    counts = _counts(base, token, route_ids)
    while changed + SETTLE_QUIET_S > time.monotonic() < started + SETTLE_MAX_S:
        time.sleep(SETTLE_POLL_S)
        now = _counts(base, token, route_ids)
        if now != counts:
            counts, changed = now, time.monotonic()
    results = {}
    for route_id in route_ids:
        found = ShadowRoute.model_validate(counts[route_id] | {"mismatches": []})
        if found.mismatched:
            detail = _call(f"{base}/_gateway/routes/{route_id}/shadow", token)
            found.mismatches = [
                ShadowMismatch.model_validate(m) for m in detail["mismatches"][:KEPT_MISMATCHES]
            ]
        results[route_id] = found
    return results
