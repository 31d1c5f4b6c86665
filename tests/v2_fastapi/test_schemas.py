"""The OpenAPI document and the v2 server agree on what a field accepts.

Clients and tools read the document's patterns as ECMAScript regexes (JSON Schema says so);
Pydantic checks them with another engine. `jsonschema_rs` reads them as the document's
readers do, so each value here is accepted by the server exactly when the document says so.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
import requests

from gateway.background_server import BackgroundServer
from tests.support import Stack


@pytest.fixture(scope="module")
def document(gateway: BackgroundServer) -> dict[str, Any]:
    answer = requests.get(f"{gateway.url}/openapi.json", timeout=10)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def _property(document: dict[str, Any], model: str, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][model]["properties"][name]
    return schema


def _query_parameter(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    (schema,) = [
        parameter["schema"]
        for parameter in document["paths"][path]["get"]["parameters"]
        if parameter["name"] == name
    ]
    return schema


# Blank in one regex dialect and not in the other, and NUL, which PostgreSQL cannot store.
ODD_CHARACTERS = ["\x85", "\ufeff", "\x00"]


@pytest.mark.parametrize("name", ["Ada", " ", *ODD_CHARACTERS, "A\x00da"])
def test_customer_names_are_accepted_as_documented(
    v2: Stack, document: dict[str, Any], unique: str, name: str
) -> None:
    documented = jsonschema_rs.is_valid(_property(document, "CustomerCreate", "name"), name)
    body = {"name": name, "email": f"n-{unique.lower()}@example.com"}
    answer = v2.post("/customers", json=body, user="clerk")
    assert answer.status_code == (201 if documented else 422), answer.text


# Invisible format characters (Unicode Cf), in the BMP and above it, which emails refuse.
FORMAT_CHARACTERS = ["\u200b", "\U000e0041"]


@pytest.mark.parametrize("character", ["", *ODD_CHARACTERS, *FORMAT_CHARACTERS])
def test_customer_emails_are_accepted_as_documented(
    v2: Stack, document: dict[str, Any], unique: str, character: str
) -> None:
    email = f"e{character}-{unique.lower()}@example.com"
    documented = jsonschema_rs.is_valid(_property(document, "CustomerCreate", "email"), email)
    answer = v2.post("/customers", json={"name": "Email", "email": email}, user="clerk")
    assert answer.status_code == (201 if documented else 422), answer.text


@pytest.mark.parametrize("price", ["0", "0.00", "000.0", "0.01", "12.50"])
def test_prices_are_accepted_as_documented(
    v2: Stack, document: dict[str, Any], unique: str, price: str
) -> None:
    documented = jsonschema_rs.is_valid(_property(document, "ProductCreate", "price"), price)
    body = {"sku": f"P-{unique}", "name": "Priced", "price": price, "stock": 1}
    answer = v2.post("/products", json=body, user="admin")
    assert answer.status_code == (201 if documented else 422), answer.text


@pytest.mark.parametrize(
    ("path", "name"), [("/products", "q"), ("/customers", "email")], ids=["q", "email"]
)
@pytest.mark.parametrize("value", ["ada", "a\x00da"], ids=["plain", "nul"])
def test_search_terms_are_accepted_as_documented(
    v2: Stack, document: dict[str, Any], path: str, name: str, value: str
) -> None:
    documented = jsonschema_rs.is_valid(_query_parameter(document, path, name), value)
    answer = v2.get(path, params={name: value}, user="viewer")
    assert answer.status_code == (200 if documented else 422), answer.text


# The text sent, and the value a reader of the document takes it for.
@pytest.mark.parametrize(
    ("name", "sent", "read"),
    [
        ("limit", "100", 100),
        ("limit", "101", 101),
        ("offset", "-1", -1),
        ("limit", "5.0", 5.0),
        ("limit", "5 ", "5 "),
    ],
)
def test_paging_is_accepted_as_documented(
    v2: Stack, document: dict[str, Any], name: str, sent: str, read: object
) -> None:
    documented = jsonschema_rs.is_valid(_query_parameter(document, "/products", name), read)
    answer = v2.get("/products", params={name: sent})
    assert answer.status_code == (200 if documented else 422), answer.text
