"""How uvicorn serves the gateway: one set of options for the command line and the tests,
and one logging set-up for every gateway process.

`gateway serve` and `BackgroundServer` (what the tests and the bundled carrier stub run
on) both start from these, so a test of the served gateway checks what production runs.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from shop_core.settings import Settings

UVICORN_OPTIONS: Final[dict[str, Any]] = {
    # uvicorn answers `server: uvicorn` by default: it tells a scanner what to try first.
    "server_header": False,
    # Bounded, so a stuck connection cannot hold a shutdown (or a test's teardown) forever.
    "timeout_graceful_shutdown": 30,
}


def configure_logging(settings: Settings) -> None:
    """Logging for a gateway process: the command line's, and each of its worker processes'."""
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    # At INFO and below SQLAlchemy logs every statement and row: password hashes, emails.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
