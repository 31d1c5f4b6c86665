"""The carrier's throttle on its own: the bucket's arithmetic on a given clock, and a call
refused when its turn would come after its deadline."""

from __future__ import annotations

import asyncio

import pytest

from v2_fastapi.throttle import Limits, Throttle, Throttled, TokenBucket


def test_the_bucket_gives_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=100.0)
    assert [bucket.reserve(100.0, latest=101.0) for _ in range(3)] == [100.0] * 3
    # Then one token every 0.1 s, reserved ahead in order.
    assert bucket.reserve(100.0, latest=101.0) == pytest.approx(100.1)
    assert bucket.reserve(100.0, latest=101.0) == pytest.approx(100.2)


def test_a_token_due_after_the_deadline_is_refused_and_not_reserved() -> None:
    bucket = TokenBucket(rate=10, burst=1, now=0.0)
    assert bucket.reserve(0.0, latest=0.0) == 0.0
    with pytest.raises(Throttled) as refused:
        bucket.reserve(0.0, latest=0.05)
    assert refused.value.retry_after_s == pytest.approx(0.1)
    assert refused.value.retry_after_header == "1"
    # The refused call took nothing: the next token is still due at 0.1.
    assert bucket.reserve(0.0, latest=1.0) == pytest.approx(0.1)


def test_a_pause_empties_the_bucket_and_the_rate_starts_after_it() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    bucket.pause_until(2.0)
    with pytest.raises(Throttled):
        bucket.reserve(1.0, latest=1.9)
    # No burst saved up during the pause: the first token is one interval after it.
    assert bucket.reserve(1.0, latest=3.0) == pytest.approx(2.1)


def test_a_call_waiting_for_a_slot_is_refused_at_its_deadline() -> None:
    async def scenario() -> None:
        throttle = Throttle(Limits(max_rps=None, burst=1, max_concurrency=1))
        loop = asyncio.get_running_loop()
        async with throttle.admitted(loop.time() + 10):
            with pytest.raises(Throttled):
                async with throttle.admitted(loop.time() + 0.01):
                    pass
        # The slot is free again.
        async with throttle.admitted(loop.time() + 0.01):
            pass

    asyncio.run(scenario())


def test_a_pause_longer_than_the_deadline_refuses_at_once() -> None:
    async def scenario() -> None:
        throttle = Throttle(Limits(max_rps=None, burst=1, max_concurrency=5))
        loop = asyncio.get_running_loop()
        throttle.pause(30.0)
        with pytest.raises(Throttled) as refused:
            async with throttle.admitted(loop.time() + 1.0):
                pass
        assert refused.value.retry_after_header in {"29", "30"}

    asyncio.run(scenario())
