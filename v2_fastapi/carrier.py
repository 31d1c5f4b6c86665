"""The carrier service's rate endpoint, through one pooled httpx client.

One `httpx.AsyncClient` for the whole app (made in the lifespan): a client per call would
pay a TCP (and TLS) handshake per quote. It speaks httpx's API over the `httpx-aiohttp`
transport rather than httpx's own: at 100 concurrent quotes against a 50 ms carrier, with
the gateway on one core, httpx's own transport (httpcore) gave a fraction of the quotes per
second that aiohttp's gave (the README's reliability section has the figures and command).

A call sends an `httpx.Request` built from the URL parsed once and the JSON body written
once per quote (`client.send(request, stream=True)`): `client.stream(..., json=...)` parses
the URL, merges headers and encodes the body again on every attempt. Handing requests to
the transport with no client at all cost about 230 µs less CPU per call at 100 concurrent
calls, but the app keeps one client: it is the API the project names, and what a team
replacing the transport or adding auth would look for.

The carrier is a quota-bound service: its calls go through a `Throttle` (throttle.py), and
transient failures are tried again (`CarrierClient`). The retries are a small loop rather
than tenacity or stamina: what ends them is the call's one deadline, a carrier's
Retry-After pauses the throttle for every call (not only for the one retrying), and each
attempt must take its turn under the throttle again; the loop says all three in a few lines
where a decorator's stop, wait and retry predicates would spread them out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
import httpx
from fastapi import HTTPException
from httpx_aiohttp import AiohttpTransport
from pydantic import ValidationError

from v2_fastapi.metrics import Outcome, UpstreamMetrics
from v2_fastapi.schemas.shipping import CarrierRate, RateRequest
from v2_fastapi.throttle import Limits, Throttle, Throttled

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
_HEADERS = {"Accept-Encoding": "identity", "Content-Type": "application/json"}
# Failures that may pass: the carrier's gateway, its overload, its own timeout (a refused
# or reset connection too, and 429 with Retry-After: see `CarrierClient`).
_TRANSIENT_STATUSES = frozenset({502, 503, 504})
# The pause before the first retry is up to 50 ms, doubling with each retry, at most 1 s.
BACKOFF_BASE_S = 0.05
BACKOFF_MAX_S = 1.0
# What a turn must leave before the deadline, besides twice the carrier's answer time: the
# event loop's own delays under load.
TURN_MARGIN_S = 0.05
# The weight of the latest answer's time in the moving average of the carrier's.
ANSWER_TIME_WEIGHT = 0.2
# A carrier's Retry-After beyond this is taken as this: no call's deadline is that long.
MAX_RETRY_AFTER_S = 3600.0


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


@dataclass(frozen=True)
class _Failure:
    """One attempt's failure: the client's answer if it is the last, and whether to retry."""

    error: HTTPException
    transient: bool = False
    retry_after_s: float | None = None  # the carrier's Retry-After
    timed_out: bool = False


class CarrierClient:
    """Asks the carrier for rates, within its quota, trying transient failures again.

    Every call has one deadline, `timeout_s` from its start: the turn it waits for under the
    throttle, its attempts and the pauses between them all fit in it. A turn is taken only
    if it leaves twice the carrier's recent answer time (and 50 ms) before the deadline,
    and, with `max_wait_s`, only if it comes within that time. Answers: the rate; 503 with
    Retry-After when the throttle has no turn for the call in time (the carrier was not
    asked) or the carrier answered 429; 504 when the deadline passed waiting for the
    carrier; 502 for every other failure, the last attempt's.

    Retried, with exponential backoff and jitter, at most `retries` times and only while the
    deadline allows: a refused or reset connection, 502, 503, 504, and 429 with Retry-After.
    A Retry-After pauses every call through the throttle, not only this one: the carrier's
    quota is the whole process's. An invalid answer, a redirect and any other status are
    not retried: asking again would get the same.
    """

    UPSTREAM = "carrier"

    def __init__(
        self,
        *,
        base_url: str | None,
        timeout_s: float,
        http: httpx.AsyncClient,
        throttle: Throttle | None = None,
        retries: int = 0,
        max_wait_s: float | None = None,
        metrics: UpstreamMetrics | None = None,
    ) -> None:
        # Parsed once: a URL object per call is a parse per call.
        self._rates_url = httpx.URL(f"{base_url.rstrip('/')}/v1/rates") if base_url else None
        self._timeout_s = timeout_s
        self._http = http
        # A request built here carries the client's timeouts as `build_request` would add
        # them: each phase (connect, read, waiting for a pooled connection) is bounded by
        # the setting; the whole call is bounded by it too, in `_ask`.
        self._timeouts = {"timeout": httpx.Timeout(timeout_s).as_dict()}
        self._throttle = throttle or Throttle(Limits(None, 1, MAX_CONNECTIONS))
        self._retries = retries
        self._max_wait_s = max_wait_s
        self._metrics = metrics
        self._jitter = random.Random()  # noqa: S311 - spreading retries, not cryptography
        # How long the carrier takes to give a rate, lately (a moving average).
        self._answer_s = 0.0

    async def quote(self, order: RateRequest) -> CarrierRate:
        if self._rates_url is None:
            raise HTTPException(502, "No carrier service is configured.")
        order_id = order["order_id"]
        body = _json(order)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        attempt = 0
        while True:
            try:
                async with self._throttle.admitted(self._latest_turn(loop, deadline)):
                    started = loop.time()
                    outcome = await self._ask(self._rates_url, body, order_id, deadline)
                    took = loop.time() - started
                    self._observe(took)
            except Throttled as exc:
                # Counted rather than logged at warning: under an overload there is one a
                # request, and a refusal must stay cheap.
                self._count("throttled")
                logger.debug("carrier call for order %d throttled: %s", order_id, exc)
                raise HTTPException(
                    503,
                    "The carrier service is at its limit for now; try again shortly.",
                    headers={"Retry-After": exc.retry_after_header},
                ) from None
            if isinstance(outcome, CarrierRate):
                self._count("ok")
                self._answer_s += ANSWER_TIME_WEIGHT * (took - self._answer_s)
                return outcome
            if outcome.retry_after_s is not None:
                self._throttle.pause(outcome.retry_after_s)
            if outcome.transient and attempt < self._retries:
                backoff = self._backoff(attempt)
                wait = max(backoff, outcome.retry_after_s or 0.0)
                if loop.time() + wait < deadline:
                    self._count("retried")
                    attempt += 1
                    # The carrier's pause, if longer, is waited for by the throttle.
                    await asyncio.sleep(backoff)
                    continue
            self._count("timeout" if outcome.timed_out else "error")
            raise outcome.error

    async def _ask(
        self, url: httpx.URL, content: bytes, order_id: int, deadline: float
    ) -> CarrierRate | _Failure:
        """One attempt: the rate, or why there is none."""
        request = httpx.Request(
            "POST", url, content=content, headers=_HEADERS, extensions=self._timeouts
        )
        try:
            # One deadline on the whole call: a carrier that trickles its answer a byte at a
            # time never trips a per-read timeout.
            async with asyncio.timeout_at(deadline):
                response = await self._http.send(request, stream=True)
                try:
                    status, headers = response.status_code, response.headers
                    body = await _read_limited(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            return _timed_out(order_id)
        except httpx.TransportError as exc:
            if _is_timeout(exc):
                return _timed_out(order_id)
            logger.warning("carrier unreachable for order %d: %r", order_id, exc)
            error = HTTPException(502, "The carrier service could not be reached.")
            return _Failure(error, transient=True)
        except _TooLarge:
            logger.warning("carrier answer too large for order %d", order_id)
            return _Failure(_invalid())
        if not 200 <= status < 300:
            logger.warning("carrier answered %d for order %d", status, order_id)
            return _failed_status(status, headers.get("retry-after"))
        try:
            return CarrierRate.model_validate_json(body)
        except ValidationError as exc:
            logger.warning("carrier gave an invalid rate for order %d: %s", order_id, exc)
            return _Failure(_invalid())

    def _latest_turn(self, loop: asyncio.AbstractEventLoop, deadline: float) -> float:
        # A turn too close to the deadline would spend a token on a 504.
        latest = deadline - 2 * self._answer_s - TURN_MARGIN_S
        if self._max_wait_s is not None:
            latest = min(latest, loop.time() + self._max_wait_s)
        return latest

    def _backoff(self, attempt: int) -> float:
        """Exponential, with jitter: half the step fixed, half random, so that calls that
        failed together do not come back together, and none comes back at once."""
        step: float = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0**attempt)
        return step / 2 + self._jitter.uniform(0, step / 2)

    def _count(self, outcome: Outcome) -> None:
        if self._metrics is not None:
            self._metrics.count(self.UPSTREAM, outcome)

    def _observe(self, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.observe(self.UPSTREAM, seconds)


class _TooLarge(Exception):
    pass


def _invalid() -> HTTPException:
    return HTTPException(502, "The carrier service gave an invalid answer.")


def _timed_out(order_id: int) -> _Failure:
    logger.warning("carrier timed out for order %d", order_id)
    error = HTTPException(504, "The carrier service did not answer in time.")
    # The deadline is spent: there is no time left to try again.
    return _Failure(error, timed_out=True)


def _failed_status(status: int, retry_after: str | None) -> _Failure:
    pause = parse_retry_after(retry_after)
    if status == 429:
        # The carrier's quota, spent: the client may come back when the carrier says.
        seconds = str(max(1, math.ceil(pause or 1.0)))
        error = HTTPException(
            503,
            "The carrier service's quota is used up for now; try again shortly.",
            headers={"Retry-After": seconds},
        )
        return _Failure(error, transient=pause is not None, retry_after_s=pause)
    error = HTTPException(502, f"The carrier service answered {status}.")
    return _Failure(error, transient=status in _TRANSIENT_STATUSES, retry_after_s=pause)


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (a number of seconds or an HTTP date), None if absent or
    unreadable; at most `MAX_RETRY_AFTER_S`."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _json(payload: RateRequest) -> bytes:
    # As httpx's `json=` writes it: compact, and no NaN (not JSON).
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


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
            raise _TooLarge
    return bytes(body)
