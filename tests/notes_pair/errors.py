"""The notes pair's error formats, in one place: its apps and the gateway render them here.

The gateway answers some requests itself (413 body too large, 408 body too slow, 503
legacy pool busy, 431 headers too large): `legacy_error` and `v2_error` are what it calls
for those, so that a client of either side sees one error format whoever answered.
"""

from __future__ import annotations

import json
from typing import Any, Final

LEGACY_CONTENT_TYPE: Final = "application/json"
V2_CONTENT_TYPE: Final = "application/vnd.notes.error+json"


def fault(status: int, code: str, message: str) -> dict[str, Any]:
    """The legacy side's error body: `{"fault": {"status", "code", "reason"}}`."""
    return {"fault": {"status": status, "code": code, "reason": message}}


def v2_problem(status: int, code: str, message: str) -> dict[str, Any]:
    """The v2 side's error body: `{"error_code", "status", "detail"}`."""
    return {"error_code": code, "status": status, "detail": message}


def legacy_error(status: int, code: str, message: str) -> tuple[str, bytes]:
    """Content type and body of an error the gateway gives under the legacy prefix."""
    return LEGACY_CONTENT_TYPE, json.dumps(fault(status, code, message)).encode()


def v2_error(status: int, code: str, message: str) -> tuple[str, bytes]:
    """Content type and body of an error the gateway gives under the v2 prefix."""
    return V2_CONTENT_TYPE, json.dumps(v2_problem(status, code, message)).encode()
