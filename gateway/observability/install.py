"""`install_observability`: request ids, metrics and access logs on a gateway app.

Wiring for a gateway built from `Settings` (the shop's `create_app`):

    install_observability(
        app,
        stacks={LEGACY_PREFIX: "legacy", V2_PREFIX: "v2"},
        metrics_enabled=settings.metrics_enabled,
        metrics_path=METRICS_PATH if settings.metrics_port is None else None,
        multiprocess_dir=settings.metrics_multiprocess_dir,
        legacy_mount=legacy,
    )

and for each process's logs, `configure_logging(settings.log_level, settings.log_format)`,
with uvicorn's own access log off (`access_log=False`: the gateway writes one line per
request) and `log_config=None`, so that uvicorn's records go through the same handler
(JSON too). `gateway serve` serves `/metrics` on `GATEWAY_METRICS_PORT` from
`app.state.observability` (one process) or from the workers' directory (`--workers N`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.types import ASGIApp

from gateway.legacy_mount import LegacyMount
from gateway.observability.metrics import (
    Exposition,
    GatewayMetrics,
    IncludedMetrics,
    MetricsSource,
)
from gateway.observability.middleware import ObservabilityMiddleware
from gateway.observability.recent import RecentRequests
from gateway.observability.routes import WsgiRouteReporter

METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class Observability:
    """What `install_observability` set up; also on `app.state.observability`."""

    metrics: GatewayMetrics | None
    exposition: Exposition | None


def install_observability(
    app: Starlette,
    *,
    stacks: Mapping[str, str],
    metrics_enabled: bool = True,
    metrics_path: str | None = METRICS_PATH,
    multiprocess_dir: Path | None = None,
    legacy_mount: LegacyMount | None = None,
    access_log: bool = True,
    registry: CollectorRegistry | None = None,
    recent: RecentRequests | None = None,
    more_metrics: Sequence[MetricsSource] = (),
) -> Observability:
    """Observe every request `app` answers.

    - `stacks`: path prefix -> stack name, e.g. `{"/legacy": "legacy", "/v2": "v2"}`.
    - `metrics_path`: where `app` serves the metrics; None when they have a port of their
      own (serve `observability.exposition.app()` there).
    - `multiprocess_dir`: prometheus-client's directory when several worker processes
      serve (`PROMETHEUS_MULTIPROC_DIR`); /metrics then adds up every process.
    - `legacy_mount`: the mounted WSGI app reports the rule it matched, and its pool's
      state is exported.
    - `registry`: a fresh one by default, so that several apps in one process (tests)
      keep separate counts.
    - `recent`: where the last minutes of each route's requests are kept (readiness).
    - `more_metrics`: the apps' own metrics (anything with prometheus-client's `collect()`,
      a `CollectorRegistry` for one), shown on /metrics beside the gateway's. With
      `multiprocess_dir` they are read from the processes' files, as the gateway's are.

    Call it once the app's other middleware is added; more may still be added after: the
    observability wraps whatever stack the app builds, outermost.
    """
    metrics = GatewayMetrics(registry or CollectorRegistry()) if metrics_enabled else None
    if metrics is not None:
        for source in more_metrics:
            metrics.registry.register(IncludedMetrics(source))
    exposition = (
        Exposition(metrics.registry, multiprocess_dir=multiprocess_dir) if metrics else None
    )
    if legacy_mount is not None:
        legacy_mount.app = WsgiRouteReporter(legacy_mount.app)
        if metrics is not None:
            legacy_mount.observer = metrics
    if exposition is not None and metrics_path is not None:
        if isinstance(app, FastAPI):
            # FastAPI's router names the matched route in the scope for its own routes only.
            app.add_api_route(
                metrics_path, exposition.endpoint, methods=["GET"], include_in_schema=False
            )
        else:
            app.add_route(
                metrics_path, exposition.endpoint, methods=["GET"], include_in_schema=False
            )

    build_inner_stack = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        # Outside Starlette's error middleware too, so that its 500s carry the request id.
        return ObservabilityMiddleware(
            build_inner_stack(),
            stacks=stacks,
            metrics=metrics,
            access_log=access_log,
            multiprocess_dir=multiprocess_dir if metrics is not None else None,
            recent=recent,
        )

    # Starlette builds the stack on the first call; an override on the instance keeps any
    # class-level override (the gateway adds its security headers that way) inside ours.
    instance: Any = app
    instance.build_middleware_stack = build_middleware_stack
    observability = Observability(metrics, exposition)
    app.state.observability = observability
    return observability
