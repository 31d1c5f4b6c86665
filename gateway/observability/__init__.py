"""Observability building blocks of the gateway: request ids, metrics, access logs.

`install_observability(app, stacks=..., legacy_mount=...)` wires them onto a root app;
`configure_logging(level, log_format)` sets up a process's logs. See the modules for the
parts: `request_id`, `routes` (route templates), `metrics`, `logs`, `middleware`.
"""

from gateway.observability.install import METRICS_PATH, Observability, install_observability
from gateway.observability.logs import configure_logging
from gateway.observability.metrics import Exposition, GatewayMetrics
from gateway.observability.request_id import current_request_id
from gateway.observability.routes import UNMATCHED

__all__ = [
    "METRICS_PATH",
    "UNMATCHED",
    "Exposition",
    "GatewayMetrics",
    "Observability",
    "configure_logging",
    "current_request_id",
    "install_observability",
]
