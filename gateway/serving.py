"""How uvicorn serves the gateway: one set of options for the command line and the tests.

`gateway serve` and `BackgroundServer` (what the tests and the bundled carrier stub run
on) both start from these, so a test of the served gateway checks what production runs.
"""

from __future__ import annotations

from typing import Any, Final

UVICORN_OPTIONS: Final[dict[str, Any]] = {
    # uvicorn answers `server: uvicorn` by default: it tells a scanner what to try first.
    "server_header": False,
    # Bounded, so a stuck connection cannot hold a shutdown (or a test's teardown) forever.
    "timeout_graceful_shutdown": 30,
}
