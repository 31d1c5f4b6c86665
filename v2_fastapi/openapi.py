"""What the OpenAPI document says about errors, created resources and entity tags."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from v2_fastapi.problems import PROBLEM_JSON, ProblemDetails, ValidationProblem

_DESCRIPTIONS = {
    401: "Missing, malformed, forged or expired token",
    403: "The token lacks the scope this operation needs",
    404: "No such resource",
    409: "Conflicts with the current state of the data",
    412: "If-Match named no current entity tag: the resource changed since it was read",
    413: "The request body is too large",
    422: "The request is not valid",
    429: "Too many failed logins for this username or from this address; see Retry-After",
    502: "The carrier service failed or gave an invalid answer",
    503: "The database is unavailable",
    504: "The carrier service did not answer in time",
}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def problem_responses(
    *statuses: int,
    descriptions: Mapping[int, str] | None = None,
    retry_after: Collection[int] = (429,),
) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting error statuses as problem details.

    `descriptions` replaces the common description of a status where a route says more;
    the statuses in `retry_after` carry a `Retry-After` header.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "model": ValidationProblem if status == 422 else ProblemDetails,
            "description": (descriptions or {}).get(status, _DESCRIPTIONS[status]),
        }
        if status in retry_after:
            response["headers"] = _RETRY_AFTER
        responses[status] = response
    return responses


# The tag `shop_core.etags.etag_of` makes: a quoted hash, the same on both stacks.
ETAG_HEADER: dict[str, Any] = {
    "description": "The resource's strong entity tag, for If-Match and If-None-Match",
    "required": True,
    "schema": {"type": "string", "pattern": '^"[0-9a-f]{32}"$'},
}

# `responses=` entries for answers that carry one resource, and its ETag.
TAGGED: dict[int | str, dict[str, Any]] = {200: {"headers": {"ETag": ETAG_HEADER}}}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not Modified: If-None-Match names the current entity tag",
        "headers": {"ETag": ETAG_HEADER},
    }
}
CREATED: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "Created",
        "headers": {
            "Location": {"description": "The new resource's path", "schema": {"type": "string"}},
            "ETag": ETAG_HEADER,
        },
    }
}


def use_problem_media_type(document: dict[str, Any]) -> dict[str, Any]:
    """Document error bodies as `application/problem+json`, the type they are sent with.

    FastAPI describes every response of a route with the route's own media type.
    """
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return document


def anchor_token_url(document: dict[str, Any], mount_path: str) -> dict[str, Any]:
    """Give the password flow's token URL the mount path.

    Swagger UI resolves a relative `tokenUrl` against the page it runs on (`/docs`), not
    against the document's server URL, so *Authorize* would post to `/auth/token`.
    """
    for scheme in document.get("components", {}).get("securitySchemes", {}).values():
        flow = scheme.get("flows", {}).get("password")
        if flow is not None and not flow["tokenUrl"].startswith("/"):
            flow["tokenUrl"] = f"{mount_path}/{flow['tokenUrl']}"
    return document
