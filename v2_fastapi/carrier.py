"""The carrier service's rate endpoint, through one pooled httpx client.

One `httpx.AsyncClient` for the whole app (made in the lifespan): a client per call would
pay a TCP (and TLS) handshake per quote. It speaks httpx's API over the `httpx-aiohttp`
transport rather than httpx's own: at 100 concurrent quotes against a 50 ms carrier, with
the gateway on one core, httpx's own transport (httpcore) gave a fraction of the quotes per
second that aiohttp's gave (the README's reliability section has the figures and command).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import httpx
from fastapi import HTTPException
from httpx_aiohttp import AiohttpTransport
from pydantic import ValidationError

from v2_fastapi.schemas.orders import OrderPublic
from v2_fastapi.schemas.shipping import CarrierRate

logger = logging.getLogger(__name__)

# Well above the number of quotes in flight at once under load (100 connections in the
# benchmark); httpx's and aiohttp's default of 100 would make the 101st quote queue.
MAX_CONNECTIONS = 200
MAX_KEEPALIVE_CONNECTIONS = 200
# A rate is a few dozen bytes; the legacy stack reads at most as much.
MAX_ANSWER_BYTES = 64 * 1024
# The answer is read as it comes off the wire, so that the cap above bounds memory: a
# compressed answer could inflate far past it. A rate is too small to be worth compressing;
# a carrier that compresses anyway gives an answer that is not a rate (502).
_IDENTITY = {"Accept-Encoding": "identity"}


def make_http_client(*, timeout_s: float) -> httpx.AsyncClient:
    """The app's one client: bounded pool, no redirects, nothing read from the environment."""
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS
    )
    return httpx.AsyncClient(
        # A custom transport takes its own limits: the client's apply only to httpx's own.
        transport=AiohttpTransport(limits=limits, trust_env=False),
        limits=limits,
        # Each phase (connect, write, read, waiting for a pooled connection) is bounded by
        # the setting; the whole call is bounded by it too, in `CarrierClient.quote`.
        timeout=httpx.Timeout(timeout_s),
        # A redirect is not a rate: answered 502 below, as any status other than 2xx.
        follow_redirects=False,
        # Proxy variables, .netrc and SSL_CERT_FILE are not read: the carrier's address is a
        # setting, and the legacy stack ignores them too.
        trust_env=False,
    )


class CarrierClient:
    """Asks the carrier for rates; its failures become 502 and its slowness 504."""

    def __init__(self, *, base_url: str | None, timeout_s: float, http: httpx.AsyncClient) -> None:
        self._rates_url = f"{base_url.rstrip('/')}/v1/rates" if base_url else None
        self._timeout_s = timeout_s
        self._http = http

    async def quote(self, order: OrderPublic) -> CarrierRate:
        if self._rates_url is None:
            raise HTTPException(502, "No carrier service is configured.")
        payload = {
            "order_id": order.id,
            **order.model_dump(mode="json", include={"items", "total"}),
        }
        try:
            # One deadline on the whole call: a carrier that trickles its answer a byte at a
            # time never trips a per-read timeout.
            async with (
                asyncio.timeout(self._timeout_s),
                self._http.stream(
                    "POST", self._rates_url, json=payload, headers=_IDENTITY
                ) as response,
            ):
                status, body = response.status_code, await _read_limited(response)
        except TimeoutError as exc:
            raise _timed_out(order) from exc
        except httpx.TransportError as exc:
            if _is_timeout(exc):
                raise _timed_out(order) from exc
            logger.warning("carrier unreachable for order %d: %r", order.id, exc)
            raise HTTPException(502, "The carrier service could not be reached.") from exc
        if not 200 <= status < 300:
            logger.warning("carrier answered %d for order %d", status, order.id)
            raise HTTPException(502, f"The carrier service answered {status}.")
        try:
            return CarrierRate.model_validate_json(body)
        except ValidationError as exc:
            logger.warning("carrier gave an invalid rate for order %d: %s", order.id, exc)
            raise HTTPException(502, "The carrier service gave an invalid answer.") from exc


def _timed_out(order: OrderPublic) -> HTTPException:
    logger.warning("carrier timed out for order %d", order.id)
    return HTTPException(504, "The carrier service did not answer in time.")


def _is_timeout(exc: httpx.TransportError) -> bool:
    """Whether the carrier was too slow, rather than unreachable or broken.

    httpx-aiohttp maps every aiohttp connection error, a refused connection included, to
    `httpx.ConnectTimeout`: the aiohttp error it wraps tells which it was.
    """
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, TimeoutError)
    return isinstance(exc, httpx.TimeoutException)


async def _read_limited(response: httpx.Response) -> bytes:
    """The answer's body; one larger than any rate could be is refused, not held in memory."""
    body = bytearray()
    async for chunk in response.aiter_raw(MAX_ANSWER_BYTES):
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise HTTPException(502, "The carrier service gave an invalid answer.")
    return bytes(body)
