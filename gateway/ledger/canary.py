"""Serving `canary`: a share of the clients get v2 through the adapter, the others Flask, and
the route goes back to `legacy` by itself when v2 does worse than Flask beside it.

Which side a client gets is sticky: a stable hash of the client's key and the route id,
bucketed 0..99, is below the route's share for v2. The key is the token's `sub` (or, with
`GATEWAY_CANARY_STICKY_BY=address`, always the client's address, which is also the
fallback for a request without a token). The same client lands in the same bucket in
every process and on every host, and a larger share keeps every client it had.

Each process keeps, per route in `canary`, the outcomes of the last `window_s` seconds for
each side: requests, 5xx answers, latencies (as the client waited, from the dispatch to
the last byte). A periodic task, off the request path, judges them once both sides have
`min_requests`: v2 is rolled back when its 5xx rate exceeds Flask's by more than
`max_error_rate_delta`, or its p95 exceeds Flask's times `max_p95_ratio`. Rolling back is
a change of the store (actor `gateway canary`, the figures in the reason), made only if
the route is still in `canary` there: a second process reaching the same verdict finds
the route already rolled back, its change is refused and nothing is recorded twice.
Judging is relative: at a share of 100 Flask serves nobody, there is no baseline and no
verdict.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, Literal

from starlette.datastructures import Headers
from starlette.types import Message, Scope, Send

from gateway.ledger.model import (
    FULL_SHARE,
    RouteState,
    RouteStatus,
    RouteStatuses,
    StatusRefused,
)

log = logging.getLogger("gateway.canary")

Side = Literal["legacy", "v2"]
StickyBy = Literal["subject", "address"]
SIDES: Final[tuple[Side, Side]] = ("legacy", "v2")
ACTOR: Final = "gateway canary"
# Kept per side and route, whatever the window: bounds memory under heavy traffic (the
# window is then the last this many requests, still far more than a p95 needs).
MAX_SAMPLES: Final = 20_000
# A token's payload larger than this is not decoded for its `sub`.
MAX_PAYLOAD_CHARS: Final = 8192


def client_key(scope: Scope, sticky_by: StickyBy) -> str:
    """Who the client is, for stickiness only."""
    if sticky_by == "subject":
        subject = _token_subject(Headers(scope=scope).get("authorization", ""))
        if subject is not None:
            return "sub:" + subject
    client = scope.get("client")
    return "addr:" + (client[0] if client else "")


def _token_subject(authorization: str) -> str | None:
    """The `sub` of a bearer JWT, read WITHOUT checking its signature.

    Stickiness is not security: a client that forges a `sub` only chooses which of two
    implementations of the same contract answers it, which it could do anyway by trying
    until it lands where it likes. The token is still verified, as always, by whichever app
    serves the request; nothing else here trusts it.
    """
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    parts = token.strip().split(".")
    if len(parts) != 3 or len(parts[1]) > MAX_PAYLOAD_CHARS:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    subject = payload.get("sub") if isinstance(payload, dict) else None
    return subject if isinstance(subject, str) and subject else None


def bucket(key: str, route_id: str) -> int:
    """0..99, the same in every process (Python's `hash` is salted per process)."""
    digest = hashlib.blake2b(f"{route_id}\n{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % FULL_SHARE


@dataclass(frozen=True)
class SideFigures:
    requests: int
    errors: int  # 5xx answers (and failures before any answer)
    p95_s: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class _Window:
    """One side's outcomes over the last `window_s` seconds: (when, 5xx, seconds)."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, bool, float]] = deque(maxlen=MAX_SAMPLES)

    def figures(self, now: float, window_s: float) -> SideFigures:
        while self.samples and self.samples[0][0] < now - window_s:
            self.samples.popleft()
        latencies = sorted(sample[2] for sample in self.samples)
        errors = sum(1 for sample in self.samples if sample[1])
        return SideFigures(len(latencies), errors, _p95(latencies))


def _p95(ordered: list[float]) -> float | None:
    # Nearest rank: the smallest latency at least 95 % of the requests did not exceed.
    if not ordered:
        return None
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Verdict:
    """What the last judgement of a route found."""

    at: datetime
    outcome: Literal["too few requests", "healthy", "rolled back", "no longer in canary"]
    reason: str


@dataclass(frozen=True)
class CanaryPolicy:
    sticky_by: StickyBy = "subject"
    window_s: float = 60.0
    min_requests: int = 50
    max_error_rate_delta: float = 0.01
    max_p95_ratio: float = 1.5
    judge_interval_s: float = 1.0


class Canary:
    """Chooses the side of each canary request, records its outcome, judges the routes."""

    def __init__(self, policy: CanaryPolicy, *, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self._clock = clock
        self._windows: dict[str, dict[Side, _Window]] = {}
        self._verdicts: dict[str, Verdict] = {}

    def side(self, scope: Scope, route_id: str, share: int) -> Side:
        if share <= 0:
            return "legacy"
        if share >= FULL_SHARE:
            return "v2"
        key = client_key(scope, self.policy.sticky_by)
        return "v2" if bucket(key, route_id) < share else "legacy"

    def observe(self, send: Send, route_id: str, side: Side) -> tuple[Send, Callable[[], None]]:
        """`send`, timing the answer to its last byte, and what to call if the app raised."""
        started = self._clock()
        status = 0
        done = False

        def record(failed: bool) -> None:
            nonlocal done
            if done:
                return
            done = True
            now = self._clock()
            windows = self._windows.setdefault(route_id, {s: _Window() for s in SIDES})
            windows[side].samples.append((now, failed, now - started))

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Before the last write: a client gone by then is not the app's failure.
                record(status >= 500)
            await send(message)

        return send_observed, lambda: record(True)

    def figures(self, route_id: str) -> dict[Side, SideFigures]:
        now = self._clock()
        windows = self._windows.get(route_id)
        if windows is None:
            return {side: SideFigures(0, 0, None) for side in SIDES}
        return {side: windows[side].figures(now, self.policy.window_s) for side in SIDES}

    def verdict(self, route_id: str) -> Verdict | None:
        return self._verdicts.get(route_id)

    def forget(self, route_id: str) -> None:
        self._windows.pop(route_id, None)

    def judgement(self, route_id: str) -> str | None:
        """Why v2 must be rolled back, or None: too few requests, or no worse than Flask."""
        policy = self.policy
        figures = self.figures(route_id)
        legacy, v2 = figures["legacy"], figures["v2"]
        if min(legacy.requests, v2.requests) < max(policy.min_requests, 1):
            return None
        over = f"over {policy.window_s:g} s ({v2.requests} / {legacy.requests} requests)"
        if v2.error_rate > legacy.error_rate + policy.max_error_rate_delta:
            return (
                f"v2 5xx rate {v2.error_rate:.1%} > legacy {legacy.error_rate:.1%} "
                f"+ {policy.max_error_rate_delta:.1%} {over}"
            ).replace("%", " %")
        assert legacy.p95_s is not None and v2.p95_s is not None
        if v2.p95_s > legacy.p95_s * policy.max_p95_ratio:
            return (
                f"v2 p95 {v2.p95_s * 1000:.1f} ms > legacy p95 {legacy.p95_s * 1000:.1f} ms "
                f"x {policy.max_p95_ratio:g} {over}"
            )
        return None

    async def judge(self, statuses: RouteStatuses, route_ids: list[str]) -> None:
        """One round: every route in `canary` here is judged; the others' windows dropped
        (a route moved away and back starts afresh)."""
        for route_id in route_ids:
            if statuses.current(route_id).state is not RouteState.CANARY:
                self.forget(route_id)
                continue
            figures = self.figures(route_id)
            if min(f.requests for f in figures.values()) < max(self.policy.min_requests, 1):
                self._verdicts[route_id] = Verdict(_now(), "too few requests", "")
                continue
            reason = self.judgement(route_id)
            if reason is None:
                self._verdicts[route_id] = Verdict(_now(), "healthy", "")
                continue
            outcome = await roll_back(statuses, route_id, reason)
            self._verdicts[route_id] = Verdict(_now(), outcome, reason)
            self.forget(route_id)

    @asynccontextmanager
    async def judging(
        self, statuses: Callable[[], RouteStatuses], route_ids: list[str]
    ) -> AsyncIterator[None]:
        """Judges every `judge_interval_s` until the context ends. `statuses` is asked each
        round: the control plane may hand the dispatch its store after the start."""
        stop = asyncio.Event()

        async def rounds() -> None:
            while not stop.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.policy.judge_interval_s)
                    return
                try:
                    await self.judge(statuses(), route_ids)
                except Exception:
                    # The control database may be down: judged again next round.
                    log.warning("canary judgement failed", exc_info=True)

        task = asyncio.create_task(rounds(), name="gateway canary judge")
        try:
            yield
        finally:
            stop.set()
            await task


async def roll_back(
    statuses: RouteStatuses, route_id: str, reason: str
) -> Literal["rolled back", "no longer in canary"]:
    """The route back to `legacy` (its share and dates kept), if it is still in `canary` in
    the store; else nothing changes and nothing is recorded."""

    def back_to_legacy(before: RouteStatus) -> RouteStatus:
        if before.state is not RouteState.CANARY:
            raise StatusRefused(f"route {route_id} is no longer in canary")
        return replace(before, state=RouteState.LEGACY)

    try:
        await statuses.edit(route_id, back_to_legacy, actor=ACTOR, reason=reason)
    except StatusRefused:
        # Another process (or an operator) moved it first.
        return "no longer in canary"
    log.warning("route %s rolled back to legacy: %s", route_id, reason)
    return "rolled back"


def _now() -> datetime:
    return datetime.now(UTC)
