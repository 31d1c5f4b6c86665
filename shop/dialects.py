"""How the shop's clients speak to each stack (API.md), written once for the tests and
the load tests: the login, the list windows, where a list answer holds its list, errors.
"""

from __future__ import annotations

from typing import Any

from loadtests.dialect import Dialect, form_login, json_login, offset_limit, page_per_page


def legacy_error_problem(status: int, content_type: str, body: Any) -> str | None:
    """`{"error": {"code", "message"[, "fields"]}}` as JSON."""
    if not content_type.startswith("application/json"):
        return f"content type {content_type!r}, not JSON"
    error = body.get("error") if isinstance(body, dict) and set(body) == {"error"} else None
    if not isinstance(error, dict):
        return f"not an error object: {str(body)[:200]}"
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        return f"an error without a code and a message: {str(body)[:200]}"
    return None


def v2_error_problem(status: int, content_type: str, body: Any) -> str | None:
    """RFC 9457 problem details carrying the answer's status."""
    if not content_type.startswith("application/problem+json"):
        return f"content type {content_type!r}, not problem details"
    if not isinstance(body, dict) or not {"type", "title", "status", "detail"} <= set(body):
        return f"not problem details: {str(body)[:200]}"
    if body["status"] != status:
        return f"problem details of status {body['status']} in a {status} answer"
    return None


LEGACY = Dialect(
    prefix="/legacy",
    login=json_login,
    window=page_per_page,
    list_key="{resource}",
    error_problem=legacy_error_problem,
    invalid_status=400,
)
V2 = Dialect(
    prefix="/v2",
    login=form_login,
    window=offset_limit,
    list_key="items",
    error_problem=v2_error_problem,
    invalid_status=422,
)
DIALECTS = {"legacy": LEGACY, "v2": V2}
