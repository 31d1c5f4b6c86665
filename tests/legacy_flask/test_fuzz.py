"""Property-based fuzzing of the legacy API: bad input is a 4xx JSON error and changes nothing.

Every request here is invalid by construction (a field of the wrong type or out of range,
malformed or non-UTF-8 JSON, a body that is not JSON, a bad query string or path), sent with
an admin token so that it reaches validation. Each must be answered with a 4xx
`{"error": {...}}` as application/json, never a 500 or HTML, and leave the tables as they were.
The app runs in-process (Flask's test client) over each test database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from werkzeug.test import TestResponse

import legacy_flask
from gateway.background_server import BackgroundServer
from shop_core.models import MAX_ID, Customer, Order, OrderItem, Product
from tests.conftest import make_settings
from tests.fuzzing import fuzz_settings
from tests.support import bearer_for

EXAMPLES = 120


@pytest.fixture(scope="module")
def app(database_url: str, carrier: BackgroundServer) -> Iterator[Flask]:
    settings = make_settings(database_url, carrier_url=carrier.url)
    flask_app = legacy_flask.create_app(
        settings.legacy_config(
            threads=settings.legacy_workers, max_body_bytes=settings.max_body_bytes
        )
    )
    yield flask_app
    legacy_flask.dispose_engine(flask_app)


@pytest.fixture(scope="module")
def admin(app: Flask, database_url: str) -> dict[str, str]:
    return bearer_for(make_settings(database_url), "admin", "read write admin")


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def rows(client: FlaskClient, admin: dict[str, str]) -> dict[str, int]:
    """A product, a customer and an order of this module's own, for the requests to aim at."""
    product = client.post(
        "/products",
        json={"sku": "FUZZ-TARGET", "name": "Fuzz target", "price": "5.00", "stock": 50},
        headers=admin,
    )
    customer = client.post(
        "/customers", json={"name": "Fuzz", "email": "fuzz@example.com"}, headers=admin
    )
    assert product.status_code == customer.status_code == 201
    assert product.json is not None and customer.json is not None
    items = [{"product_id": product.json["id"], "quantity": 1}]
    order = client.post(
        "/orders", json={"customer_id": customer.json["id"], "items": items}, headers=admin
    )
    assert order.status_code == 201 and order.json is not None
    return {
        "product": product.json["id"],
        "customer": customer.json["id"],
        "order": order.json["id"],
    }


def _fingerprint(db: Engine) -> tuple[Any, ...]:
    """Counts, latest changes and stock of every table a request could write."""
    row = select(
        select(func.count()).select_from(Product).scalar_subquery(),
        select(func.max(Product.updated_at)).scalar_subquery(),
        select(func.sum(Product.stock)).scalar_subquery(),
        select(func.count()).select_from(Customer).scalar_subquery(),
        select(func.max(Customer.updated_at)).scalar_subquery(),
        select(func.count()).select_from(Order).scalar_subquery(),
        select(func.count())
        .select_from(Order)
        .where(Order.status == "cancelled")
        .scalar_subquery(),
        select(func.count()).select_from(OrderItem).scalar_subquery(),
    )
    with db.connect() as conn:
        return tuple(conn.execute(row).one())


def _assert_rejected(answer: TestResponse, *statuses: int) -> None:
    assert answer.status_code in statuses, (answer.status_code, answer.get_data()[:300])
    assert answer.mimetype == "application/json", answer.get_data()[:300]
    body = answer.get_json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str)


# JSON texts of values that no field accepts whatever its type: none is a string, an integer
# in range or a usable number. NaN and Infinity are the literals Python's parser takes.
JUNK = st.one_of(
    st.sampled_from(["null", "true", "false", "{}", "[]", "NaN", "Infinity", "-Infinity"]),
    st.sampled_from(["1e999", "-1e999", "1" + "0" * 5000]),  # past float and int limits
    st.integers(min_value=1, max_value=20_000).map(lambda depth: "[" * depth + "]" * depth),
    st.recursive(
        st.none() | st.booleans(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    ).map(json.dumps),
)
NOT_AN_INTEGER = st.one_of(
    JUNK,
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),  # 5.0 included
    st.text().map(json.dumps),
    st.integers().map(lambda number: json.dumps(str(number))),
)


def _integer(low: int, high: int) -> st.SearchStrategy[str]:
    outside = st.integers(max_value=low - 1) | st.integers(min_value=high + 1)
    return NOT_AN_INTEGER | outside.map(str)


def _string(invalid_text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Non-strings, and strings the field refuses, NUL and lone surrogates among them."""
    with_nul = st.tuples(st.text(), st.text()).map(lambda parts: "\x00".join(parts))
    lone_surrogate = st.text().map(lambda text: json.dumps(text)[:-1] + '\\ud800"')
    return (
        JUNK | st.integers().map(str) | (invalid_text | with_nul).map(json.dumps) | lone_surrogate
    )


def _not_matching(pattern: str) -> st.SearchStrategy[str]:
    return st.text().filter(lambda text: re.fullmatch(pattern, text) is None)


BLANK = st.text(alphabet=" \t\r\n\x0b\x0c", max_size=5)
NAME = _string(BLANK | st.text(min_size=201, max_size=400))
SKU = _string(_not_matching(r"[A-Z0-9-]{1,32}"))
EMAIL = _string(_not_matching(r"[^@\s]+@[^@\s]+\.[^@\s]+") | st.just("a@b." + "c" * 320))
TIER = _string(st.text().filter(lambda text: text not in {"standard", "gold", "platinum"}))
PRICE = (
    JUNK
    | st.integers(max_value=0).map(str)
    | st.integers(min_value=10**9).map(str)
    | (_not_matching(r"[0-9]{1,9}(\.[0-9]{1,2})?").map(json.dumps))
)
STOCK = _integer(0, MAX_ID)
ID = _integer(1, MAX_ID)
QUANTITY = _integer(1, 1000)


def _object(fields: dict[str, str]) -> str:
    return "{" + ", ".join(f"{json.dumps(key)}: {value}" for key, value in fields.items()) + "}"


@st.composite
def _broken(
    draw: st.DrawFn,
    valid: dict[str, str],
    invalid: dict[str, st.SearchStrategy[str]],
    optional: frozenset[str] = frozenset(),
) -> str:
    """A valid body with one or more fields replaced by bad values, or a required one left out."""
    fields = dict(valid)
    if draw(st.booleans()):
        del fields[draw(st.sampled_from(sorted(set(valid) - optional)))]
    else:
        for name in draw(st.sets(st.sampled_from(sorted(invalid)), min_size=1)):
            fields[name] = draw(invalid[name])
    return _object(fields)


def _items(product_id: int) -> st.SearchStrategy[str]:
    item = {"product_id": str(product_id), "quantity": "1"}
    broken_item = _broken(item, {"product_id": ID, "quantity": QUANTITY})
    return st.one_of(
        _string(st.text()),
        st.just("[]"),
        st.just("[" + ", ".join([_object(item)] * 2) + "]"),  # the same product twice
        st.lists(broken_item, min_size=1, max_size=3).map(
            lambda items: "[" + ", ".join(items) + "]"
        ),
        st.integers(min_value=51, max_value=60).map(
            lambda count: (
                "["
                + ", ".join(
                    _object({"product_id": str(i), "quantity": "1"}) for i in range(1, count + 1)
                )
                + "]"
            )
        ),
    )


def _bodies(rows: dict[str, int]) -> dict[str, st.SearchStrategy[str]]:
    product = {"sku": '"FUZZ-OK"', "name": '"Fuzzed"', "price": '"1.00"', "stock": "1"}
    product_fields = {"sku": SKU, "name": NAME, "price": PRICE, "stock": STOCK}
    customer = {"name": '"Fuzzed"', "email": '"ok@example.com"', "tier": '"gold"'}
    customer_fields = {"name": NAME, "email": EMAIL, "tier": TIER}
    order = {
        "customer_id": str(rows["customer"]),
        "items": f"[{_object({'product_id': str(rows['product']), 'quantity': '1'})}]",
    }
    order_fields = {"customer_id": ID, "items": _items(rows["product"])}
    return {
        "POST /products": _broken(product, product_fields),
        f"PUT /products/{rows['product']}": _broken(product, product_fields),
        "POST /customers": _broken(customer, customer_fields, optional=frozenset({"tier"})),
        f"PUT /customers/{rows['customer']}": _broken(customer, customer_fields),
        "POST /orders": _broken(order, order_fields),
        "POST /auth/token": _broken(
            {"username": '"admin"', "password": '"demo"'},
            {"username": _string(st.nothing()), "password": _string(st.nothing())},
        ),
    }


ENDPOINTS = [
    "POST /products",
    "PUT /products/{product}",
    "POST /customers",
    "PUT /customers/{customer}",
    "POST /orders",
    "POST /auth/token",
]


def _target(endpoint: str, rows: dict[str, int]) -> tuple[str, str]:
    method, path = endpoint.split(" ")
    return method, path.format(**rows)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_invalid_fields_are_rejected(
    client: FlaskClient, admin: dict[str, str], rows: dict[str, int], db: Engine, endpoint: str
) -> None:
    method, path = _target(endpoint, rows)
    bodies = _bodies(rows)[f"{method} {path}"]
    # A login for a username that exists nowhere is refused with a 401.
    statuses = (400, 401) if path == "/auth/token" else (400,)

    @fuzz_settings(default_examples=EXAMPLES)
    @given(body=bodies)
    def check(body: str) -> None:
        before = _fingerprint(db)
        answer = client.open(
            path, method=method, data=body.encode(), content_type="application/json", headers=admin
        )
        _assert_rejected(answer, *statuses)
        assert _fingerprint(db) == before

    check()


# Bytes that are not a JSON object: arbitrary bytes (mostly not UTF-8), JSON of another
# kind, truncated or nested past any parser's limit.
NOT_AN_OBJECT = st.one_of(
    st.binary(max_size=200).filter(lambda data: not data.lstrip().startswith(b"{")),
    JUNK.map(str.encode),
    st.text().map(lambda text: json.dumps(text).encode()),
    st.integers(min_value=1000, max_value=200_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(min_value=1, max_value=50).map(lambda depth: b'{"a": ' * depth),
    st.binary(min_size=1, max_size=20).map(lambda data: b'{"name": "' + data + b'\xff"}'),
)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bodies_that_are_not_json_objects_are_rejected(
    client: FlaskClient, admin: dict[str, str], rows: dict[str, int], db: Engine, endpoint: str
) -> None:
    method, path = _target(endpoint, rows)

    @fuzz_settings(default_examples=EXAMPLES)
    @given(body=NOT_AN_OBJECT)
    def check(body: bytes) -> None:
        before = _fingerprint(db)
        answer = client.open(
            path, method=method, data=body, content_type="application/json", headers=admin
        )
        _assert_rejected(answer, 400)
        assert _fingerprint(db) == before

    check()


NOT_JSON_TYPES = st.sampled_from(
    [
        None,
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=fuzz",
        "application/xml",
        "application/jsonx",
        "application/octet-stream",
    ]
)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bodies_not_sent_as_json_are_rejected(
    client: FlaskClient, admin: dict[str, str], rows: dict[str, int], db: Engine, endpoint: str
) -> None:
    method, path = _target(endpoint, rows)
    product = {"sku": "FUZZ-CT", "name": "x", "price": "1.00", "stock": 1}
    customer = {"name": "x", "email": "ct@example.com"}
    valid = {
        "POST /products": product,
        "PUT /products/{product}": product,
        "POST /customers": customer,
        "PUT /customers/{customer}": customer | {"tier": "gold"},
        "POST /orders": {
            "customer_id": rows["customer"],
            "items": [{"product_id": rows["product"], "quantity": 1}],
        },
        "POST /auth/token": {"username": "admin", "password": "demo"},
    }[endpoint]

    @fuzz_settings(default_examples=20)
    @given(content_type=NOT_JSON_TYPES)
    def check(content_type: str | None) -> None:
        before = _fingerprint(db)
        headers = dict(admin) | ({"Content-Type": content_type} if content_type else {})
        answer = client.open(path, method=method, data=json.dumps(valid), headers=headers)
        _assert_rejected(answer, 400)
        assert _fingerprint(db) == before

    check()


def _percent_encoded(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


# Texts that are no integer: `int()` takes no letter, and none of these spellings.
NOT_AN_INTEGER_TEXT = st.one_of(
    st.sampled_from(["", " ", "NaN", "Infinity", "1.5", "5.0", "1e3", "0x10", "1,000", "\x00"]),
    st.text(min_size=1).filter(lambda text: any(char.isalpha() for char in text)),
)


def _query_integer(low: int, high: int) -> st.SearchStrategy[str]:
    outside = st.integers(max_value=low - 1) | st.integers(min_value=high + 1)
    return NOT_AN_INTEGER_TEXT | outside.map(str)


QUERY_CASES = {
    "/products": {"page": _query_integer(1, MAX_ID), "per_page": _query_integer(1, 100)},
    "/customers": {"page": _query_integer(1, MAX_ID), "per_page": _query_integer(1, 100)},
    "/orders": {
        "page": _query_integer(1, MAX_ID),
        "per_page": _query_integer(1, 100),
        "customer_id": _query_integer(1, MAX_ID),
    },
    # Out of range is a 404 here: no such order.
    "/shipping/quote": {"order_id": NOT_AN_INTEGER_TEXT | st.integers(max_value=0).map(str)},
}
# UTF-8 continuation bytes on their own: never valid UTF-8, and never a digit once decoded.
NOT_UTF8 = st.lists(st.integers(min_value=0x80, max_value=0xBF), max_size=4).map(bytes)


@pytest.mark.parametrize("path", QUERY_CASES)
def test_bad_query_strings_are_rejected(
    client: FlaskClient, admin: dict[str, str], db: Engine, path: str
) -> None:
    parameters = QUERY_CASES[path]

    @fuzz_settings(default_examples=EXAMPLES)
    @given(name=st.sampled_from(sorted(parameters)), data=st.data(), raw=NOT_UTF8)
    def check(name: str, data: st.DataObject, raw: bytes) -> None:
        value = _percent_encoded(data.draw(parameters[name])) + "".join(f"%{b:02X}" for b in raw)
        before = _fingerprint(db)
        answer = client.get(f"{path}?{name}={value}", headers=admin)
        _assert_rejected(answer, 400, 404)
        assert _fingerprint(db) == before

    check()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "POST"])
@pytest.mark.parametrize("resource", ["products", "customers", "orders"])
def test_bad_ids_in_paths_are_not_found(
    client: FlaskClient, admin: dict[str, str], db: Engine, resource: str, method: str
) -> None:
    @fuzz_settings(default_examples=20)
    @given(
        segment=st.one_of(
            st.integers(max_value=0).map(str),
            st.integers(min_value=MAX_ID + 1).map(str),
            st.text(min_size=1)
            .filter(lambda text: not (text.isascii() and text.isdigit()))
            .map(_percent_encoded),
        )
    )
    def check(segment: str) -> None:
        suffix = "/cancel" if (resource, method) == ("orders", "POST") else ""
        before = _fingerprint(db)
        answer = client.open(f"/{resource}/{segment}{suffix}", method=method, headers=admin)
        _assert_rejected(answer, 404, 405)
        assert _fingerprint(db) == before

    check()
