"""v2's own Prometheus metrics: its calls to upstream services.

v2 may not import the gateway (import-linter), so it registers its metrics with
prometheus-client in a registry of its own, named the gateway's way (`gateway_` prefix,
seconds, bounded labels); the shop hands that registry to the gateway (`AppPair.metrics`),
whose /metrics shows them beside its own. With `gateway serve --workers N`,
prometheus-client's multiprocess files carry them, as they carry the gateway's.
"""

from __future__ import annotations

from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Histogram

Outcome = Literal["ok", "retried", "throttled", "timeout", "error"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("ok", "retried", "throttled", "timeout", "error")
# Seconds: from a nearby service's few milliseconds to the longest carrier timeout.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class UpstreamMetrics:
    """`gateway_upstream_requests_total{upstream, outcome}` and
    `gateway_upstream_duration_seconds{upstream}`.

    Each attempt that reaches the upstream counts once: `ok`, `retried` (it failed and is
    tried again), `timeout` or `error` (it failed, and that is the call's answer), and its
    time is observed; a call the throttle refuses counts once as `throttled`.
    """

    def __init__(self, registry: CollectorRegistry, upstreams: tuple[str, ...]) -> None:
        self.registry = registry
        self._requests = Counter(
            "gateway_upstream_requests",
            "Calls to upstream services, by outcome.",
            ["upstream", "outcome"],
            registry=registry,
        )
        self._duration = Histogram(
            "gateway_upstream_duration_seconds",
            "Time from sending a call to an upstream service to the end of its answer.",
            ["upstream"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        # Exported from the start at 0, so that a rate over each is defined before the first.
        for upstream in upstreams:
            for outcome in OUTCOMES:
                self._requests.labels(upstream, outcome)
            self._duration.labels(upstream)

    def count(self, upstream: str, outcome: Outcome) -> None:
        self._requests.labels(upstream, outcome).inc()

    def observe(self, upstream: str, seconds: float) -> None:
        self._duration.labels(upstream).observe(seconds)
