"""Outbound throttling for one upstream: a token bucket, a cap on calls in flight, and the
pause an upstream asks for with `Retry-After`.

A call may wait for its turn only until its deadline. When its turn would come later, it is
refused at once (`Throttled`, which the carrier client answers 503 with `Retry-After`): the
upstream is never asked, and the client is not kept waiting for an answer it cannot get.

Why not a library: aiolimiter, the maintained asyncio limiter, is a leaky bucket whose
`acquire()` waits as long as it takes and cannot tell beforehand how long that would be;
wrapped in a timeout, a call over the limit would wait out its whole deadline before its
503. The bucket here reserves tokens ahead, as `golang.org/x/time/rate`'s `Reserve` does:
a call learns when its token is due, and takes it only if that is before its deadline.
Reservations also keep the order in which calls asked, with no polling.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


class Throttled(Exception):
    """No turn before the call's deadline; `retry_after_s`: when one would come."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"throttled for {retry_after_s:.3f} s")
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1, as `Retry-After` takes them."""
        return str(max(1, math.ceil(self.retry_after_s)))


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; one token per call.

    Times are the event loop's clock. The token count goes below zero for tokens reserved
    ahead: `-2` means the next two tokens are promised to calls that are waiting for them.
    """

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        # The time `_tokens` is counted at; later than now during an upstream's pause.
        self._at = now

    def reserve(self, now: float, latest: float) -> float:
        """Reserve the next token and return when it is due, or raise `Throttled` if it is
        due after `latest` (and reserve nothing)."""
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        due = self._at + max(0.0, 1.0 - self._tokens) / self.rate
        if due > latest:
            raise Throttled(due - now)
        self._tokens -= 1.0
        return due

    def pause_until(self, until: float) -> None:
        """No token before `until`, and none saved up by then: the upstream asked for a
        pause (`Retry-After`), and the rate starts again from there, without a burst."""
        self._tokens = min(self._tokens, 0.0)
        self._at = max(self._at, until)


@dataclass(frozen=True)
class Limits:
    """One process's share of an upstream's limits."""

    max_rps: float | None  # None: no rate limit
    burst: int
    max_concurrency: int

    @classmethod
    def shared(
        cls, *, max_rps: float | None, burst: int, max_concurrency: int, processes: int
    ) -> Limits:
        """The share of each of `processes` that together must keep within the limits.

        Each takes 1/N of the rate, of the burst and of the concurrency (at least one call
        of each): no process needs to know what the others do, and together they never
        exceed the whole. A process that gets less traffic than the others leaves some of
        the quota unused.
        """
        return cls(
            max_rps=None if max_rps is None else max_rps / processes,
            burst=max(1, burst // processes),
            max_concurrency=max(1, max_concurrency // processes),
        )


class Throttle:
    """Admits calls to one upstream within `limits`, each only until its deadline."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.max_concurrency)
        self._bucket: TokenBucket | None = None
        # No call before this (the event loop's clock): the upstream's last Retry-After.
        self._not_before = 0.0

    @asynccontextmanager
    async def admitted(self, deadline: float) -> AsyncIterator[None]:
        """Hold a slot and a token for one call, or raise `Throttled` if either would come
        after `deadline` (the event loop's clock). The slot is given back on the way out."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            # Calls in flight end at their own deadlines, which are not known here.
            raise Throttled(1.0) from None
        try:
            await self._take_turn(loop, deadline)
            yield
        finally:
            self._slots.release()

    def pause(self, seconds: float) -> None:
        """The upstream asked for no calls for `seconds` (its `Retry-After`)."""
        until = asyncio.get_running_loop().time() + seconds
        self._not_before = max(self._not_before, until)
        if self._bucket is not None:
            self._bucket.pause_until(until)

    async def _take_turn(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        while True:
            now = loop.time()
            start = max(now, self._not_before)
            if start > deadline:
                raise Throttled(start - now)
            due = start if self.limits.max_rps is None else self._reserve(now, deadline)
            if due > now:
                await asyncio.sleep(due - now)
            # A pause that came while this call waited holds it too.
            if self._not_before <= loop.time():
                return

    def _reserve(self, now: float, deadline: float) -> float:
        if self._bucket is None:
            # Made on first use, on the event loop's clock.
            assert self.limits.max_rps is not None
            self._bucket = TokenBucket(self.limits.max_rps, self.limits.burst, now)
            if self._not_before > now:
                self._bucket.pause_until(self._not_before)
        return self._bucket.reserve(now, deadline)
