"""The admin API in the gateway's OpenAPI document, under its own tag.

The gateway's `/openapi.json` is the v2 API's document (what new clients integrate with),
whose `servers` entry puts every path under the v2 prefix. The admin paths are added to
it with a `servers` entry of their own (the root: they are outside both prefixes), their
own bearer scheme, and schemas whose names start with `Gateway`, so that they never take
the place of one of v2's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.openapi.utils import get_openapi

from gateway.ledger.admin import ADMIN_TAG

SCHEME = "GatewayAdminToken"
# FastAPI describes its default validation errors itself; the admin API answers problem
# details instead (declared on every operation), so these are left out.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def admin_openapi(router: APIRouter) -> dict[str, Any]:
    """The admin paths, components and tag, to be added to another document."""
    document = get_openapi(title="gateway admin", version="1", routes=router.routes)
    paths: dict[str, Any] = {}
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            operation["security"] = [{SCHEME: []}]
            operation.get("responses", {}).pop("422", None)
            operation.setdefault("responses", {})["422"] = {
                "description": "Invalid change, or one the ledger refuses",
                "content": {"application/problem+json": {}},
            }
        paths[path] = {**item, "servers": [{"url": "/"}]}
    schemas = {
        name: schema
        for name, schema in document.get("components", {}).get("schemas", {}).items()
        if name not in _FASTAPI_VALIDATION_SCHEMAS
    }
    return {
        "paths": paths,
        "schemas": schemas,
        "security_scheme": {
            "type": "http",
            "scheme": "bearer",
            "description": "GATEWAY_ADMIN_TOKEN",
        },
        "tag": {
            "name": ADMIN_TAG,
            "description": "Which implementation serves each legacy route (not for clients).",
        },
    }


def with_admin(document: dict[str, Any], admin: dict[str, Any]) -> dict[str, Any]:
    """`document` with the admin paths added (a new dict: `document` may be cached)."""
    components = dict(document.get("components", {}))
    components["schemas"] = {**components.get("schemas", {}), **admin["schemas"]}
    components["securitySchemes"] = {
        **components.get("securitySchemes", {}),
        SCHEME: admin["security_scheme"],
    }
    return {
        **document,
        "paths": {**document.get("paths", {}), **admin["paths"]},
        "components": components,
        "tags": [*document.get("tags", []), admin["tag"]],
    }
