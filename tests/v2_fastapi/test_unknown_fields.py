"""Every JSON body v2 reads refuses a field it does not know, nested objects' too.

The operations and their models are read from v2's OpenAPI document, so a route or a
model added later is covered without a change here. Each body carries an unknown field
in every object its schema describes (the order and each of its items...) and nothing
else: the answer is 422 naming each unknown field (`extra_forbidden`), besides the
required fields it lacks. A model that ignored unknown fields would leave its own out.
The ids in paths name no row, so that nothing could change even if a body were taken.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from gateway.background_server import BackgroundServer
from tests.support import Stack

UNKNOWN = "unknown_field"
NO_ROW = "999999999"

Loc = tuple[str | int, ...]


def _document(gateway: BackgroundServer) -> dict[str, Any]:
    answer = requests.get(f"{gateway.url}/openapi.json", timeout=10)
    answer.raise_for_status()
    document: dict[str, Any] = answer.json()
    return document


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The schema a `$ref` names (and its model's name), or the schema itself."""
    ref = schema.get("$ref")
    if ref is None:
        return None, schema
    name = ref.removeprefix("#/components/schemas/")
    resolved: dict[str, Any] = document["components"]["schemas"][name]
    return name, resolved


def _with_unknown_fields(
    document: dict[str, Any], schema: dict[str, Any], loc: Loc, models: set[str]
) -> tuple[Any, list[Loc]]:
    """A value for `schema` with an unknown field in each object, and where each one is."""
    name, schema = _resolve(document, schema)
    if schema.get("type") == "array" and "items" in schema:
        item, locs = _with_unknown_fields(document, schema["items"], (*loc, 0), models)
        return [item], locs
    if schema.get("type") != "object" or "properties" not in schema:
        return None, []
    if name is not None:
        models.add(name)
    value: dict[str, Any] = {UNKNOWN: 1}
    locs: list[Loc] = [(*loc, UNKNOWN)]
    for field, field_schema in schema["properties"].items():
        nested, nested_locs = _with_unknown_fields(document, field_schema, (*loc, field), models)
        if nested_locs:
            value[field] = nested
            locs += nested_locs
    return value, locs


def _json_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, body schema) of every operation that reads a JSON body."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                found.append((method.upper(), path, content["application/json"]["schema"]))
    return found


def test_every_v2_json_body_refuses_unknown_fields(gateway: BackgroundServer, v2: Stack) -> None:
    document = _document(gateway)
    operations = _json_operations(document)
    models: set[str] = set()
    for method, path, schema in operations:
        body, locs = _with_unknown_fields(document, schema, ("body",), models)
        target = re.sub(r"\{[^}]+\}", NO_ROW, path)
        answer = v2.request(method, target, json=body, user="admin")
        assert answer.status_code == 422, f"{method} {path}: {answer.text}"
        refused = {
            tuple(error["loc"])
            for error in answer.json()["errors"]
            if error["type"] == "extra_forbidden"
        }
        assert refused == set(locs), f"{method} {path}"
    # What the shop has today, so that a document read wrongly cannot pass on nothing.
    assert {
        "ProductCreate",
        "ProductUpdate",
        "CustomerCreate",
        "CustomerReplace",
        "CustomerUpdate",
        "OrderCreate",
        "OrderItemCreate",
    } <= models
    assert len(operations) >= 6
