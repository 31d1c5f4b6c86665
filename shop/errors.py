"""The shop's error formats, for the errors the gateway makes itself (413, 408, 503...).

The legacy side answers as its Flask app does (`legacy_flask/errors.py`); the v2 side's
format is RFC 9457 problem details, the gateway's default.
"""

from __future__ import annotations

import json


def legacy_error(status: int, code: str, message: str) -> tuple[str, bytes]:
    return "application/json", json.dumps({"error": {"code": code, "message": message}}).encode()
