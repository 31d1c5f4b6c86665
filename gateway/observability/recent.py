"""The last minutes of each route's requests, in this process, for the readiness summary.

Prometheus histograms hold counts since the start in fixed buckets: a p95 over "the last
five minutes" needs a scraper and a query. The dashboard and `gateway routes report` must
work without either, so the observability middleware also appends each request of the
two stacks here: (when, seconds, 5xx) per (stack, served_by, method, route). Reading
drops what is older than the window.

Memory is bounded: the label set is bounded (see metrics.py) and each series keeps at most
`MAX_SAMPLES` requests; under heavier traffic the figures are those of the last
`MAX_SAMPLES` requests of the window, still far more than a p95 needs. Each process keeps
its own, as it counts its own metrics and shadow results.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_SAMPLES: Final = 4096

Key = tuple[str, str, str, str]  # stack, served_by, method, route


@dataclass(frozen=True)
class Figures:
    """One implementation's requests on one route over the window."""

    requests: int
    errors: int  # 5xx answers
    p50_s: float | None
    p95_s: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class RecentRequests:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self._series: dict[Key, deque[tuple[float, float, bool]]] = {}

    def record(
        self, stack: str, served_by: str, method: str, route: str, status: int, seconds: float
    ) -> None:
        key = (stack, served_by, method, route)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = deque(maxlen=MAX_SAMPLES)
        series.append((self._clock(), seconds, status >= 500))

    def watched_s(self) -> float:
        """How long this process has been recording."""
        return self._clock() - self.started

    def figures(self, stack: str, method: str, route: str, window_s: float) -> dict[str, Figures]:
        """Per implementation (served_by) that answered `method route` through `stack`."""
        since = self._clock() - window_s
        found: dict[str, Figures] = {}
        for (s, served_by, m, r), series in list(self._series.items()):
            if (s, m, r) != (stack, method, route):
                continue
            while series and series[0][0] < since:
                series.popleft()
            if not series:
                continue
            latencies = sorted(sample[1] for sample in series)
            errors = sum(1 for sample in series if sample[2])
            found[served_by] = Figures(
                requests=len(latencies),
                errors=errors,
                p50_s=_rank(latencies, 0.50),
                p95_s=_rank(latencies, 0.95),
            )
        return found


def _rank(ordered: list[float], quantile: float) -> float | None:
    # Nearest rank: the smallest latency at least `quantile` of the requests did not exceed.
    if not ordered:
        return None
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]
