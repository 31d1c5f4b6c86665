"""Is a route ready to move? One summary per route, read by the dashboard (`/_gateway`) and
by `gateway routes report` alike, through `GET /_gateway/readiness`.

For every route of the ledger: its state, share and announced dates; per implementation
(`served_by`), what it served of the legacy URL over the last `window_s` seconds
(requests, share of the route's traffic, p50/p95, 5xx rate); the shadow parity (matched
of compared) and the latest mismatches; and a verdict from the thresholds the team sets
(`GATEWAY_READY_*`):

- `ready to cut over`: in `legacy`, `shadow` or `canary`, with at least `min_compared`
  shadow comparisons, parity at least `min_parity`, and no implementation above
  `max_error_rate` over the window. A write is never shadowed (shadow.py): its evidence
  is a canary, and it is ready when v2 served at least `min_compared` of its requests
  over the window, within the error rate;
- `ready to retire the Flask route`: in `v2`, Flask served none of the route's requests
  over a whole window (this process has watched at least that long), and v2 is not above
  `max_error_rate`;
- `not ready: <why>` otherwise; `retired` for a retired route.

Every figure is this process's own (as /metrics and the shadow results are): behind a load
balancer, each worker judges what it served.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, Field

from gateway.ledger.admin_models import GatewayMismatch
from gateway.ledger.model import FULL_SHARE, LedgerRoute, RouteState, RouteStatus, RouteStatuses
from gateway.ledger.shadow import SAFE_METHODS, Counts, ShadowResults
from gateway.observability.recent import Figures, RecentRequests
from gateway.observability.routes import normalise_werkzeug_rule

LEGACY: Final = "legacy"
# The latest mismatches each route shows; the shadow endpoint has them all.
SHOWN_MISMATCHES: Final = 3


class Verdict(StrEnum):
    CUT_OVER = "ready to cut over"
    RETIRE = "ready to retire the Flask route"
    NOT_READY = "not ready"
    RETIRED = "retired"


class ReadinessPolicy(BaseModel):
    """The team's thresholds (settings `GATEWAY_READY_*`)."""

    window_s: float = Field(default=300.0, description="the recent window, seconds")
    min_compared: int = Field(default=200, description="shadow comparisons before a cutover")
    min_parity: float = Field(default=1.0, description="matched / compared, 0 to 1")
    max_error_rate: float = Field(default=0.01, description="5xx / requests, per implementation")


class Implementation(BaseModel):
    """What one implementation served of the route's legacy URL over the window."""

    served_by: str
    requests: int
    share: float = Field(description="of the route's requests over the window, 0 to 1")
    p50_ms: float | None
    p95_ms: float | None
    error_rate: float = Field(description="5xx / requests, 0 to 1")


class Parity(BaseModel):
    compared: int
    matched: int
    mismatched: int
    errored: int
    dropped: int
    parity: float | None = Field(description="matched / compared, 0 to 1; null before any")


class RouteReadiness(BaseModel):
    id: str
    legacy: str = Field(description="method and Flask rule")
    v2: str | None = Field(description="method and v2 path")
    adapter: bool
    state: RouteState
    share: int
    deprecation: datetime | None
    sunset: datetime | None
    implementations: list[Implementation]
    shadow: Parity | None = Field(description="null for a route without an adapter")
    mismatches: list[GatewayMismatch] = Field(description="the latest first")
    verdict: Verdict
    why: str = Field(description="what the verdict rests on, or what is missing")


class ReadinessReport(BaseModel):
    at: datetime
    policy: ReadinessPolicy
    watched_s: float = Field(description="how long this process has been recording")
    routes: list[RouteReadiness]


def judge(
    route: LedgerRoute,
    status: RouteStatus,
    served: dict[str, Figures],
    counts: Counts | None,
    policy: ReadinessPolicy,
    watched_s: float,
) -> tuple[Verdict, str]:
    """The verdict on one route, and why."""
    if status.state is RouteState.RETIRED:
        return Verdict.RETIRED, "the legacy URL answers 410"
    if route.adapter is None or counts is None:
        why = route.legacy_only or "no adapter: v2 cannot serve the legacy URL"
        return Verdict.NOT_READY, why
    failing = [
        f"{name} 5xx rate {figures.error_rate:.1%} > {policy.max_error_rate:.1%}"
        for name, figures in sorted(served.items())
        if figures.error_rate > policy.max_error_rate
    ]
    if failing:
        return Verdict.NOT_READY, "; ".join(failing).replace("%", " %")
    if status.state is RouteState.V2:
        flask = served.get(LEGACY)
        if flask is not None and flask.requests:
            return Verdict.NOT_READY, f"Flask served {flask.requests} requests in the window"
        if watched_s < policy.window_s:
            return (
                Verdict.NOT_READY,
                f"watched for {watched_s:.0f} s of the {policy.window_s:g} s window",
            )
        return Verdict.RETIRE, f"no Flask traffic for {policy.window_s:g} s"
    if route.legacy_method.upper() not in SAFE_METHODS:
        v2 = served.get("v2")
        answered = 0 if v2 is None else v2.requests
        if answered < policy.min_compared:
            hint = "" if status.state is RouteState.CANARY else "; writes are never shadowed"
            return (
                Verdict.NOT_READY,
                f"v2 served {answered} of {policy.min_compared} canary requests{hint}",
            )
        return Verdict.CUT_OVER, f"v2 served {answered} canary requests within the error rate"
    if counts.compared < policy.min_compared:
        hint = "" if status.state is RouteState.SHADOW else " (shadow it)"
        return (
            Verdict.NOT_READY,
            f"{counts.compared} of {policy.min_compared} shadow comparisons{hint}",
        )
    parity = counts.matched / counts.compared
    if parity < policy.min_parity:
        return (
            Verdict.NOT_READY,
            f"parity {_percent(parity)} < {_percent(policy.min_parity)} "
            f"({counts.mismatched} mismatched)",
        )
    return Verdict.CUT_OVER, f"{counts.matched} of {counts.compared} answers matched"


def report(
    routes: tuple[LedgerRoute, ...],
    statuses: RouteStatuses,
    *,
    recent: RecentRequests | None,
    shadow: ShadowResults | None,
    policy: ReadinessPolicy,
    legacy_stack: str = LEGACY,
) -> ReadinessReport:
    watched_s = 0.0 if recent is None else recent.watched_s()
    return ReadinessReport(
        at=datetime.now(UTC),
        policy=policy,
        watched_s=round(watched_s, 3),
        routes=[
            _route(route, statuses.current(route.id), recent, shadow, policy, legacy_stack)
            for route in routes
        ],
    )


def _route(
    route: LedgerRoute,
    status: RouteStatus,
    recent: RecentRequests | None,
    shadow: ShadowResults | None,
    policy: ReadinessPolicy,
    legacy_stack: str,
) -> RouteReadiness:
    template = normalise_werkzeug_rule(route.legacy_rule)
    served = (
        {}
        if recent is None
        else recent.figures(legacy_stack, route.legacy_method.upper(), template, policy.window_s)
    )
    counts = None if route.adapter is None else (shadow.counts(route.id) if shadow else Counts())
    mismatches = [] if shadow is None or route.adapter is None else shadow.mismatches(route.id)
    verdict, why = judge(route, status, served, counts, policy, recent.watched_s() if recent else 0)
    total = sum(figures.requests for figures in served.values())
    return RouteReadiness(
        id=route.id,
        legacy=f"{route.legacy_method} {route.legacy_rule}",
        v2=None if route.v2_path is None else f"{route.v2_method} {route.v2_path}",
        adapter=route.adapter is not None,
        state=status.state,
        share=status.share,
        deprecation=status.deprecation,
        sunset=status.sunset,
        implementations=[
            Implementation(
                served_by=name,
                requests=figures.requests,
                share=round(figures.requests / total, 4) if total else 0.0,
                p50_ms=_ms(figures.p50_s),
                p95_ms=_ms(figures.p95_s),
                error_rate=round(figures.error_rate, 4),
            )
            for name, figures in sorted(served.items())
        ],
        shadow=None if counts is None else _parity(counts),
        mismatches=[GatewayMismatch.of(m) for m in mismatches[:SHOWN_MISMATCHES]],
        verdict=verdict,
        why=why,
    )


def _parity(counts: Counts) -> Parity:
    return Parity(
        compared=counts.compared,
        matched=counts.matched,
        mismatched=counts.mismatched,
        errored=counts.errored,
        dropped=counts.dropped,
        parity=round(counts.matched / counts.compared, 6) if counts.compared else None,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _percent(fraction: float) -> str:
    return f"{fraction * FULL_SHARE:.4g} %"
