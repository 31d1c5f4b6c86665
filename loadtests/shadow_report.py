"""The `legacy-shadow` arm in the reports: what shadowing cost the client and what it found.

Judged: every shadowed answer matched (the issue's target is 100 % parity; a mismatch is a
bug or a documented difference), no shadow call failed, and the arm's p95 stayed within
`max_shadow_p95_ratio` of legacy's (+ the slack). Dropped calls are counted, not judged:
the budget exists to drop work rather than delay clients.
"""

from __future__ import annotations

import json

from loadtests.formats import num, times
from loadtests.schema import ArmSummary, Comparison, OpStats, ShadowRoute, Thresholds
from loadtests.verdicts import CURRENT

# The legacy clients against the gateway shadowing routes at 100 % (loadtests/shadow_arm.py).
SHADOW = "legacy-shadow"
SHADOW_PAIR = f"{SHADOW}/{CURRENT}"

SHADOW_HEAD = ["route", "compared", "matched", "mismatched", "errored", "dropped", "parity"]


def parity(route: ShadowRoute) -> float | None:
    return route.matched / route.compared if route.compared else None


def _parity_text(route: ShadowRoute) -> str:
    share = parity(route)
    return "-" if share is None else f"{share:.2%}"


def shadow_checks(
    arms: dict[str, ArmSummary], totals: dict[str, OpStats], limits: Thresholds
) -> list[str]:
    """The failed checks of the shadow arm (none when it did not run)."""
    summary = arms.get(SHADOW)
    if summary is None:
        return []
    failed = []
    routes = summary.shadow or {}
    if not routes or not any(route.compared for route in routes.values()):
        failed.append(f"{SHADOW}: no shadowed answer was compared")
    for route_id, route in routes.items():
        if route.mismatched:
            failed.append(f"{SHADOW} {route_id}: {route.mismatched} mismatched")
        if route.errored:
            failed.append(f"{SHADOW} {route_id}: {route.errored} shadow calls failed")
    shadowed, legacy = totals.get(SHADOW), totals.get(CURRENT)
    if shadowed is not None and legacy is not None:
        allowed = legacy.p95 * limits.max_shadow_p95_ratio + limits.p95_slack_ms
        if shadowed.p95 > allowed:
            failed.append(f"{SHADOW} p95 {shadowed.p95:g} ms > {allowed:g} ms allowed")
    return failed


def shadow_markdown(comparison: Comparison) -> list[str]:
    """The shadow arm's results per route, what shadowing cost, and the latest mismatches."""
    summary = comparison.arms.get(SHADOW)
    routes = (summary.shadow if summary else None) or {}
    if not routes:
        return []
    every = ShadowRoute(
        **{key: sum(getattr(r, key) for r in routes.values()) for key in SHADOW_HEAD[1:-1]}
    )
    lines = ["", f"## Shadow results ({SHADOW})", ""]
    lines += ["| " + " | ".join(SHADOW_HEAD) + " |", "|---|" + "---:|" * (len(SHADOW_HEAD) - 1)]
    lines += [
        f"| {route_id} | "
        + " | ".join([*(num(getattr(r, key)) for key in SHADOW_HEAD[1:-1]), _parity_text(r)])
        + " |"
        for route_id, r in [*routes.items(), ("all", every)]
    ]
    total = comparison.total_ratios.get(SHADOW_PAIR)
    if total is not None:
        limit = comparison.settings.thresholds.max_shadow_p95_ratio
        lines += [
            "",
            f"Shadowing cost: p95 {times(total.p95)} legacy's (allowed {limit:g}x), p50 "
            f"{times(total.p50)}, server CPU per request {times(total.cpu_per_request)}. Counts "
            "are the gateway's (GET /_gateway/routes), warm-up included, for the process that "
            "answered.",
        ]
    mismatches = [
        f"- {route_id}: {m.method} {m.path} (request {m.request_id}): "
        + "; ".join(json.dumps(d, ensure_ascii=False) for d in m.differences)
        for route_id, route in routes.items()
        for m in route.mismatches
    ]
    if mismatches:
        lines += ["", "Latest mismatches:", "", *mismatches]
    return lines
