"""The shop's error formats, for the errors the gateway makes itself (413, 408, 503...).

The legacy side answers as its Flask app does (`legacy_flask/errors.py`); the v2 side's
format is RFC 9457 problem details, the gateway's default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def legacy_error(status: int, code: str, message: str) -> tuple[str, bytes]:
    return "application/json", json.dumps({"error": {"code": code, "message": message}}).encode()


# The legacy app's codes where they are not the HTTP phrase in snake case
# (legacy_flask/errors.py): what its clients match on.
LEGACY_CODES = {413: "payload_too_large", 500: "internal_error"}


def legacy_error_with_fields(
    status: int, code: str, message: str, fields: Mapping[str, Any] | None
) -> tuple[str, bytes]:
    """The legacy format with the fields a validation error names, as the Flask app gives it."""
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return "application/json", json.dumps({"error": error}).encode()
