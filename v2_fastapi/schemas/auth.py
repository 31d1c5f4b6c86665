"""The access token answer of `POST /auth/token`."""

from __future__ import annotations

from typing import Literal

from v2_fastapi.schemas.common import StrictModel


class Token(StrictModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int
