"""The soak's verdicts: a flat run passes, and each kind of leak fails its own check."""

from __future__ import annotations

from dataclasses import replace

from loadtests.soak import Check, Sample, evaluate


def _run(
    rss: float = 0.0, threads: int = 0, fds: int = 0, connections: int = 0
) -> tuple[list[Sample], Sample]:
    """Forty samples a second apart; each figure grows by the given amount per sample."""
    samples = [
        Sample(
            at_s=float(second),
            rss_mib=100.0 + rss * second,
            threads=30 + threads * second,
            fds=60 + fds * second,
            db_connections=15 + connections * second,
        )
        for second in range(40)
    ]
    return samples, replace(samples[-1], at_s=45.0)


def _failed(samples: list[Sample], end: Sample) -> set[str]:
    checks: list[Check] = evaluate(
        samples, end, warmup_s=10, rss_growth_pct=10, slack=2, connection_limit=21
    )
    return {check.what for check in checks if not check.ok}


def test_a_flat_run_passes() -> None:
    assert _failed(*_run()) == set()


def test_memory_that_keeps_growing_fails() -> None:
    assert _failed(*_run(rss=1.0)) == {"RSS flat"}


def test_threads_descriptors_or_connections_that_keep_growing_fail() -> None:
    assert _failed(*_run(threads=1)) == {"threads not growing"}
    assert _failed(*_run(fds=1)) == {"open fds not growing"}
    assert "DB connections within the pools" in _failed(*_run(connections=1))


def test_what_is_left_after_the_load_counts() -> None:
    samples, end = _run()
    assert _failed(samples, replace(end, threads=31)) == {"threads at the end"}
    assert _failed(samples, replace(end, fds=61)) == {"open fds at the end"}
    assert _failed(samples, replace(end, db_connections=22)) == {"DB connections at the end"}
