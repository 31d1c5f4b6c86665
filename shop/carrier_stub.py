"""The carrier service stand-in: `POST /v1/rates` with a configurable latency and failure rate.

A real HTTP server on a real port, for development, tests and load tests. Its answers:
a rate (`{"carrier", "amount", "currency", "eta_days"}`), a 503 with the failure rate, or,
with the invalid rate, a 200 that is not a valid rate (to exercise the gateway's 502).
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BASE_CENTS = 490
CENTS_PER_UNIT = 25


@dataclass(frozen=True)
class CarrierBehaviour:
    latency_ms: float = 0.0
    failure_rate: float = 0.0
    invalid_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        for rate in (self.failure_rate, self.invalid_rate):
            if not 0.0 <= rate <= 1.0:
                raise ValueError("rates must be between 0 and 1")


def create_carrier_app(behaviour: CarrierBehaviour | None = None) -> Starlette:
    behaviour = behaviour or CarrierBehaviour()
    rng = random.Random()  # noqa: S311 - fault injection, not cryptography

    async def rates(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
            quantity = sum(int(item["quantity"]) for item in payload["items"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected {order_id, items, total}"}, status_code=400)
        if behaviour.latency_ms:
            await asyncio.sleep(behaviour.latency_ms / 1000)
        if rng.random() < behaviour.failure_rate:
            return JSONResponse({"error": "carrier unavailable"}, status_code=503)
        if rng.random() < behaviour.invalid_rate:
            return JSONResponse({"carrier": "stub-express", "amount": 4.9, "eta_days": "soon"})
        cents = BASE_CENTS + CENTS_PER_UNIT * quantity
        return JSONResponse(
            {
                "carrier": "stub-express",
                "amount": f"{cents // 100}.{cents % 100:02d}",
                "currency": "EUR",
                "eta_days": 2,
            }
        )

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/rates", rates, methods=["POST"]), Route("/health", health)])
