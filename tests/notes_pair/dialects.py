"""How clients speak to each side of the notes pair, for its tests and its locustfile.

No login and no paging; lists under `notes`; the pair's own error formats (`errors.py`).
"""

from __future__ import annotations

from typing import Any

from loadtests.dialect import Dialect
from tests.notes_pair.errors import LEGACY_CONTENT_TYPE, V2_CONTENT_TYPE


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip()


def legacy_fault_problem(status: int, content_type: str, body: Any) -> str | None:
    """`{"fault": {"status", "code", "reason"}}`, as `application/json`."""
    if _media_type(content_type) != LEGACY_CONTENT_TYPE:
        return f"content type {content_type!r}, not {LEGACY_CONTENT_TYPE}"
    fault = body.get("fault") if isinstance(body, dict) and set(body) == {"fault"} else None
    if not isinstance(fault, dict) or fault.get("status") != status:
        return f"not a fault of status {status}: {str(body)[:200]}"
    return None if fault.get("code") and fault.get("reason") else f"an empty fault: {body}"


def v2_error_problem(status: int, content_type: str, body: Any) -> str | None:
    """`{"error_code", "status", "detail"}`, as the pair's own media type."""
    if _media_type(content_type) != V2_CONTENT_TYPE:
        return f"content type {content_type!r}, not {V2_CONTENT_TYPE}"
    if not isinstance(body, dict) or body.get("status") != status:
        return f"not an error of status {status}: {str(body)[:200]}"
    return None if body.get("error_code") and body.get("detail") else f"an empty error: {body}"


LEGACY = Dialect(
    prefix="/legacy", list_key="notes", error_problem=legacy_fault_problem, invalid_status=400
)
V2 = Dialect(prefix="/v2", list_key="notes", error_problem=v2_error_problem, invalid_status=422)
