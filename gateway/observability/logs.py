"""Log set-up for a gateway process, and the access log: one line per request.

`GATEWAY_LOG_FORMAT=text` (default) writes readable lines; `json` writes one JSON object
per line (python-json-logger), with the access log's fields as keys. Every record carries
the request id of the request it was logged for (`request_id.RequestIdFilter`).

The access log names the route template, never the raw path: no query string (tokens and
passwords travel there in some clients), no ids of people. Headers are never logged.
"""

from __future__ import annotations

import logging
from typing import Final, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from gateway.observability.request_id import NO_REQUEST, RequestIdFilter

LogFormat = Literal["text", "json"]

access_log: Final = logging.getLogger("gateway.access")

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FORMAT: Final = "%(levelname)s %(name)s %(request_id)s %(message)s"


def formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        # `timestamp`: ISO 8601 in UTC, which log stores parse without a format string.
        return JsonFormatter(JSON_FORMAT, timestamp=True)
    return logging.Formatter(TEXT_FORMAT, defaults={"request_id": NO_REQUEST})


def log_handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing `log_format` to `stream` (stderr), stamping records with request ids."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter(log_format))
    return handler


def configure_logging(level: str, log_format: LogFormat) -> None:
    """The root logger of a gateway process: `level`, in `log_format`, with request ids."""
    logging.basicConfig(level=level, handlers=[log_handler(log_format)])


def log_access(
    *,
    request_id: str,
    stack: str,
    served_by: str,
    method: str,
    route: str,
    status: int,
    seconds: float,
    client: str,
) -> None:
    """One access-log record at INFO (callers check `access_log.isEnabledFor(INFO)` first,
    so that nothing is built for a record nobody wants)."""
    duration_ms = round(seconds * 1000, 2)
    access_log.info(
        "%s %s %s %s %d %.2fms served_by=%s",
        client,
        stack,
        method,
        route,
        status,
        duration_ms,
        served_by,
        extra={
            "request_id": request_id,
            "stack": stack,
            "served_by": served_by,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "client": client,
        },
    )
