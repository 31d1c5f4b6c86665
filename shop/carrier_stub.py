"""The carrier service stand-in: `POST /v1/rates` with a configurable latency, quota and
share of failures.

A real HTTP server on a real port, for development, tests and load tests. Its answers:
a rate (`{"carrier", "amount", "currency", "eta_days"}`); 429 with `Retry-After` for a call
past its quota (more than `quota_rps` calls in the last second); 503 for the share of calls
`failure_rate`; or, for the share `invalid_rate`, a 200 that is not a valid rate (to
exercise the gateway's 502). The shares are spread evenly rather than drawn at random
(with 1/3, every third call fails), so that a test knows what it will meet.

`GET /stats` tells what it saw: the calls received, the statuses answered, and the most
calls received within any one second (`busiest_second`).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BASE_CENTS = 490
CENTS_PER_UNIT = 25
WINDOW_S = 1.0  # the quota's window, and the one `busiest_second` counts in


@dataclass(frozen=True)
class CarrierBehaviour:
    latency_ms: float = 0.0
    failure_rate: float = 0.0
    invalid_rate: float = 0.0
    # None: no quota; else calls past this many in the last second get 429.
    quota_rps: int | None = None

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        for rate in (self.failure_rate, self.invalid_rate):
            if not 0.0 <= rate <= 1.0:
                raise ValueError("rates must be between 0 and 1")
        if self.quota_rps is not None and self.quota_rps < 1:
            raise ValueError("quota_rps must be >= 1")


class _Share:
    """Says yes to `rate` of the calls, evenly: the yes comes each time the share owed
    reaches a whole call."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._owed = 0.0

    def next(self) -> bool:
        self._owed += self.rate
        if self._owed >= 1.0 - 1e-9:
            self._owed -= 1.0
            return True
        return False


class CallLog:
    """How many rate calls arrived, the most within any second, and what they were answered.

    Only the last second's arrival times are kept: a stub serving for days holds no more.
    """

    def __init__(self) -> None:
        self.received = 0
        self.busiest_second = 0
        self.statuses: Counter[int] = Counter()
        self._last_second: deque[float] = deque()

    def arrived(self, now: float) -> None:
        self.received += 1
        self._last_second.append(now)
        while now - self._last_second[0] >= WINDOW_S:
            self._last_second.popleft()
        self.busiest_second = max(self.busiest_second, len(self._last_second))

    def summary(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "busiest_second": self.busiest_second,
        }


class _Quota:
    """At most `per_second` calls admitted in any second (a sliding window)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._admitted: deque[float] = deque()

    def wait_s(self, now: float) -> float:
        """0 if a call may pass now (and it is counted), else how long until one may."""
        while self._admitted and now - self._admitted[0] >= WINDOW_S:
            self._admitted.popleft()
        if len(self._admitted) < self.per_second:
            self._admitted.append(now)
            return 0.0
        return self._admitted[0] + WINDOW_S - now


def create_carrier_app(
    behaviour: CarrierBehaviour | None = None,
    *,
    on_stop: Callable[[CallLog], None] | None = None,
) -> Starlette:
    """The stub; `on_stop` is given what it saw when it stops (its lifespan's end)."""
    behaviour = behaviour or CarrierBehaviour()
    failures, invalid = _Share(behaviour.failure_rate), _Share(behaviour.invalid_rate)
    quota = None if behaviour.quota_rps is None else _Quota(behaviour.quota_rps)
    log = CallLog()

    def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        log.statuses[status] += 1
        return JSONResponse(body, status_code=status, headers=headers)

    async def rates(request: Request) -> Response:
        now = time.monotonic()
        log.arrived(now)
        try:
            payload = json.loads(await request.body())
            quantity = sum(int(item["quantity"]) for item in payload["items"])
        except (ValueError, KeyError, TypeError):
            return answer(400, {"error": "expected {order_id, items, total}"})
        if quota is not None and (wait_s := quota.wait_s(now)):
            headers = {"Retry-After": str(max(1, math.ceil(wait_s)))}
            return answer(429, {"error": "quota exceeded"}, headers)
        if behaviour.latency_ms:
            await asyncio.sleep(behaviour.latency_ms / 1000)
        if failures.next():
            return answer(503, {"error": "carrier unavailable"})
        if invalid.next():
            return answer(200, {"carrier": "stub-express", "amount": 4.9, "eta_days": "soon"})
        cents = BASE_CENTS + CENTS_PER_UNIT * quantity
        rate = {
            "carrier": "stub-express",
            "amount": f"{cents // 100}.{cents % 100:02d}",
            "currency": "EUR",
            "eta_days": 2,
        }
        return answer(200, rate)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def stats(_: Request) -> Response:
        return JSONResponse(log.summary())

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if on_stop is not None:
            on_stop(log)

    app = Starlette(
        routes=[
            Route("/v1/rates", rates, methods=["POST"]),
            Route("/health", health),
            Route("/stats", stats),
        ],
        lifespan=lifespan,
    )
    app.state.calls = log
    return app
