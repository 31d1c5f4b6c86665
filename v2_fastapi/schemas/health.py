"""The answer of the stack's own health check."""

from __future__ import annotations

from typing import Literal

from v2_fastapi.schemas.common import StrictModel


class Health(StrictModel):
    status: Literal["ok"] = "ok"
    stack: Literal["v2"] = "v2"
