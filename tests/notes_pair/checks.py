"""The notes pair's readiness check, registered with `--check notes=...`.

The test controls it from outside the server process: while the file named by
`NOTES_PAIR_DOWN_FILE` exists, the notes service reports itself not ready.
"""

from __future__ import annotations

import os
from typing import Final

import anyio

DOWN_FILE_VARIABLE: Final = "NOTES_PAIR_DOWN_FILE"


async def notes_ready() -> bool:
    """False while the down file exists; True otherwise (and when no file is named)."""
    # Read at each call, not at import: the server process is started before the test
    # decides to take the service down.
    down_file = os.environ.get(DOWN_FILE_VARIABLE)
    if not down_file:
        return True
    # anyio's path: the check runs in the event loop, where a blocking stat would stall it.
    return not await anyio.Path(down_file).exists()
