"""Schemathesis against the gateway's OpenAPI document, in-process, on both databases.

Every built-in check runs on every answer: no 5xx; status code, content type, headers and
body as documented; invalid input rejected and valid input accepted; a 405 with the right
`Allow`; authentication enforced. Requests carry an admin token, so they reach validation
and the database, and shipping quotes ask the carrier stub. Requests go through
Schemathesis' own ASGI client (built on requests), which runs the gateway's lifespan: no
socket, and no Starlette TestClient, so neither httpx nor httpx2 is needed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import Case, HookContext, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure
from schemathesis.openapi.checks import RejectedPositiveData

from gateway.background_server import BackgroundServer
from shop.app import create_app
from tests.conftest import make_settings
from tests.fuzzing import fuzz_settings
from tests.support import bearer_for

CONFIG = SchemathesisConfig.from_dict(
    {
        # Every check Schemathesis has, whatever a schemathesis.toml in the tree may say.
        "checks": {"enabled": True},
        # Valid and invalid input alike.
        "generation": {"mode": "all"},
    }
)

# The document does not depend on the database: it is read once, from a gateway over a
# database that is never opened, and each test sends its requests to a gateway of its own.
_DOCUMENT_ONLY = f"sqlite:///{Path(tempfile.gettempdir()) / 'gateway-openapi-only.db'}"
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(make_settings(_DOCUMENT_ONLY)), config=CONFIG
)

# Where v2 rejects, by contract, a request its OpenAPI schema admits (API.md). No JSON
# Schema can say either, so `positive_data_acceptance` is dropped for exactly these answers.
# - ids and quantities must be JSON integers: `5.0` is an integer to JSON Schema, a 422 here.
# - an order naming a customer or product that does not exist, or a product twice, is a 422.
# - an If-Match that names no current entity tag is a 412: only the server knows the tag.
_ORDER_RULES = {("body", "customer_id"), ("body", "items", "*", "product_id"), ("body", "items")}


@schema.hook
def filter_failure(context: HookContext, failure: Failure, case: Case, response: Response) -> bool:
    if not isinstance(failure, RejectedPositiveData):
        return True
    if response.status_code == 412:
        return not any(name.lower() == "if-match" for name in case.headers or {})
    if response.status_code != 422:
        return True
    errors = response.json().get("errors") or []
    return not errors or not all(_rejected_by_contract(case, error) for error in errors)


def _rejected_by_contract(case: Case, error: dict[str, Any]) -> bool:
    loc = error["loc"]
    if error["type"] == "int_type":
        value = _at(case.body, loc[1:]) if loc[:1] == ["body"] else None
        return isinstance(value, float) and value.is_integer()
    generic = tuple("*" if isinstance(part, int) else part for part in loc)
    return case.path == "/orders" and error["type"] == "value_error" and generic in _ORDER_RULES


def _at(body: Any, path: list[str | int]) -> Any:
    for part in path:
        try:
            body = body[part]
        except (KeyError, IndexError, TypeError):
            return None
    return body


@pytest.fixture
def gateway_app(database_url: str, carrier: BackgroundServer) -> FastAPI:
    """A gateway over the test database; Schemathesis starts its lifespan and ends it after."""
    return create_app(make_settings(database_url, carrier_url=carrier.url))


@pytest.fixture
def admin_headers(database_url: str) -> dict[str, str]:
    return bearer_for(make_settings(database_url), "admin", "read write admin")


@schema.parametrize()
@fuzz_settings(default_examples=50)
def test_v2_conforms_to_its_openapi(
    case: Case, gateway_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(app=gateway_app, headers=admin_headers)
