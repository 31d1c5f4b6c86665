"""The gateway's Prometheus metrics, and the /metrics answer, in one process or many.

With `gateway serve --workers N` each worker process counts for itself; prometheus-client's
multiprocess mode has every process write its numbers to files in one directory
(`PROMETHEUS_MULTIPROC_DIR`, which must be set before prometheus_client is imported), and
a scrape adds them up. `Exposition` reads that directory when it is given one, else the
process's own registry.

Label values are bounded: `stack` and `served_by` come from the gateway's configuration,
`route` is a template or `<unmatched>` (see `routes.py`), `method` is one of the standard
methods or `OTHER`, `status` is what the app answered.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.legacy_mount import QUEUE_TIMEOUT

# prometheus-client's variable, read when a process imports prometheus_client.
MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
# Seconds: from a cached answer (a few ms) to the legacy queue timeout and beyond.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def method_label(method: str) -> str:
    """Clients may send any token as a method; only the standard ones get a series each."""
    return method if method in _METHODS else "OTHER"


class GatewayMetrics:
    """The metrics of one gateway app, in `registry` (and in the multiprocess files, if on)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "gateway_requests",
            "Requests answered, by the door used (stack) and the code that answered.",
            ["stack", "served_by", "method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from the request reaching the gateway to the end of its answer.",
            ["stack", "served_by", "method", "route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        # livesum: the pool of every live worker process, added up.
        self.pool_busy = Gauge(
            "gateway_legacy_pool_threads_busy",
            "Legacy requests holding a pool thread.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_waiting = Gauge(
            "gateway_legacy_pool_requests_waiting",
            "Legacy requests waiting for a pool thread.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.rejected = Counter(
            "gateway_legacy_requests_rejected",
            "Legacy requests refused by the gateway before the app saw them.",
            ["reason"],
            registry=registry,
        )
        self.shadow_comparisons = Counter(
            "gateway_shadow_comparisons",
            "Shadowed requests whose two answers were compared, by outcome.",
            ["route", "result"],
            registry=registry,
        )
        # Exported from the start at 0, so that a rate over it is defined before the first.
        self.rejected.labels(QUEUE_TIMEOUT)
        # `labels()` validates and locks on every call; the label sets are bounded, so the
        # children are looked up once and kept.
        self._children: dict[tuple[str, str, str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(
        self, stack: str, served_by: str, method: str, route: str, status: int, seconds: float
    ) -> None:
        key = (stack, served_by, method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(stack, served_by, method, route, str(status)),
                self.duration.labels(stack, served_by, method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    # The legacy mount's observer (`gateway.legacy_mount.PoolObserver`).

    def pool_changed(self, busy: int, waiting: int) -> None:
        self.pool_busy.set(busy)
        self.pool_waiting.set(waiting)

    def request_rejected(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def shadow_compared(self, route: str, result: str) -> None:
        self.shadow_comparisons.labels(route, result).inc()


class MetricsSource(Protocol):
    """What an app's own metrics need to be shown: prometheus-client's `collect()`."""

    def collect(self) -> Iterable[Metric]: ...


class IncludedMetrics(Collector):
    """An app's metrics, in the gateway's registry (a registry is not itself a collector)."""

    def __init__(self, source: MetricsSource) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


class Exposition:
    """Renders /metrics: from `registry`, or from every process's files in multiprocess mode."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, multiprocess_dir: Path | None = None
    ) -> None:
        if registry is None and multiprocess_dir is None:
            raise ValueError("an exposition needs a registry or a multiprocess directory")
        self.registry = registry
        self.multiprocess_dir = multiprocess_dir

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics text and its media type (OpenMetrics if the scraper asks for it)."""
        if self.multiprocess_dir is not None:
            # A fresh registry per scrape, as prometheus-client's multiprocess docs say:
            # the collector reads the files when collected.
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        else:
            assert self.registry is not None
            registry = self.registry
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type

    def endpoint(self, request: Request) -> Response:
        # A plain function: Starlette runs it in its thread pool, so reading the
        # multiprocess files never blocks the event loop.
        body, content_type = self.render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    def app(self, path: str = "/metrics") -> Starlette:
        """An ASGI app serving only the metrics, for a port of their own."""
        return Starlette(routes=[Route(path, self.endpoint, methods=["GET"])])


def forget_process(multiprocess_dir: Path, pid: int | None = None) -> None:
    """Drop a stopped process's live gauges, so the pool it no longer has is not counted."""
    mark_process_dead(os.getpid() if pid is None else pid, str(multiprocess_dir))  # type: ignore[no-untyped-call]


@contextmanager
def multiprocess_directory() -> Iterator[Path]:
    """A fresh, empty directory for the worker processes' metric files, removed afterwards.

    Fresh for every run: files left by an earlier run would be added to this one's.
    """
    with tempfile.TemporaryDirectory(prefix="gateway-metrics-") as directory:
        yield Path(directory)
