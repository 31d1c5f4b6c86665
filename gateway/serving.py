"""How uvicorn serves the gateway: one set of options for the command line and the tests,
and one logging set-up for every gateway process.

`gateway serve` (with one worker or `--workers N`) and `BackgroundServer` (what the tests
and the bundled carrier stub run on) all start from these, so a test of the served gateway
checks what production runs, connection limits included.
"""

from __future__ import annotations

import functools
import gc
import logging
from typing import Any, Final

from gateway.http_protocol import ConnectionLimits, LimitedHttpToolsProtocol
from gateway.observability.logs import configure_logging as observability_logging
from gateway.responses import ErrorFormats
from gateway.settings import GatewaySettings

UVICORN_OPTIONS: Final[dict[str, Any]] = {
    # uvicorn answers `server: uvicorn` by default: it tells a scanner what to try first.
    "server_header": False,
    # Bounded, so a stuck connection cannot hold a shutdown (or a test's teardown) forever.
    "timeout_graceful_shutdown": 30,
}


def uvicorn_options(settings: GatewaySettings, errors: ErrorFormats) -> dict[str, Any]:
    """The options that serve the gateway: `UVICORN_OPTIONS` and the connection limits.

    The protocol is uvicorn's httptools one (its fast path) with a header deadline, a
    header size limit and a connection cap added (gateway/http_protocol.py). It is passed
    as a partial over a module-level class, which pickles: uvicorn hands its options to
    `--workers N` processes that way (and so are `errors`, module-level functions).
    """
    limits = ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_s,
        max_connections=settings.max_connections,
        errors=errors,
    )
    return {
        **UVICORN_OPTIONS,
        "http": functools.partial(LimitedHttpToolsProtocol, limits=limits),
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        # The gateway writes one access-log line per request itself, and uvicorn's own
        # records go through the process's handler (JSON too), not uvicorn's.
        "access_log": False,
        "log_config": None,
        # `--workers N`: a worker busy starting (or on a loaded machine) is not taken for
        # dead and restarted after uvicorn's default 5 s.
        "timeout_worker_healthcheck": 30,
    }


# CPython collects its youngest generation after every 700 new container objects. With
# dozens of requests in flight, each holding the frames, closures and scopes of every
# layer, that came every few requests, and moved objects of requests still in flight into
# the older generations, whose collections go through the whole heap. Measured on
# `GET /v2/products/{id}` (32 connections, one core): without the collector the gateway
# used about a fifth less CPU per request; frozen and at ten times the default threshold,
# it got most of that back. The cost: a few MiB of cyclic garbage waiting a little longer.
YOUNG_GENERATION_THRESHOLD: Final = 7000


def settle_heap() -> None:
    """Once the app is built, before it serves (each process that serves, once).

    What start-up built (modules, routes, models, pools) lives as long as the process:
    `gc.freeze` takes it out of the collector's sight, so that a full collection goes
    through what requests left behind, not through everything; and the youngest
    generation is collected less often (see `YOUNG_GENERATION_THRESHOLD`).
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)


def configure_logging(settings: GatewaySettings) -> None:
    """Logging for a gateway process: the command line's, and each of its worker processes'."""
    observability_logging(settings.log_level, settings.log_format)
    # At INFO and below SQLAlchemy logs every statement and row: password hashes, emails.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
