"""Hypothesis strategies for legacy requests, one per paired route of the shop's ledger.

Each draws what a legacy client could send: ids in and out of range, query parameters
well-formed or junk, JSON bodies valid or broken (wrong types, unknown and missing fields,
money as a number or a string, huge integers, unicode), bodies that are no JSON, and a
token of each scope or none. Valid requests are drawn as often as broken ones: the two
implementations must agree on what they accept and on what it writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from shop_core.models import MAX_ID
from tests.contract.differential import Request

# The rows of the fuzz database the requests aim at (tests/contract/test_differential_fuzz.py).
ORDERED_PRODUCT, FREE_PRODUCT = 1, 2
CUSTOMER_WITH_ORDERS, FREE_CUSTOMER = 1, 3
PLACED_ORDER, CANCELLED_ORDER = 1, 2
TOKENS = ("admin", "clerk", "viewer", None, "forged")

# Values no field takes whatever its type, and integers past every limit.
JUNK: st.SearchStrategy[Any] = st.sampled_from(
    [
        None,
        True,
        False,
        [],
        {},
        "",
        " ",
        "\x00",
        "\ud800",
        "é",
        1.5,
        5.0,
        "5",
        2**31,
        2**63,
        10**30,
        -1,
    ]
)
TEXT = st.text(max_size=12)


def _ids(*existing: int) -> st.SearchStrategy[int]:
    return st.sampled_from([*existing, 9_999, MAX_ID, 0, -1, MAX_ID + 1])


def _path_id(*existing: int) -> st.SearchStrategy[str]:
    return _ids(*existing).map(str) | st.sampled_from(["abc", "1.0", "%C3%A9", "00001", "+1"])


def _values(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, valid, JUNK, TEXT)


@st.composite
def _object(draw: st.DrawFn, fields: Mapping[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """A JSON object of `fields`, any of them left out, now and then an unknown one."""
    body = {}
    for name, values in fields.items():
        if draw(st.integers(0, 9)) > 0:
            body[name] = draw(values)
    if draw(st.integers(0, 4)) == 0:
        body[draw(st.sampled_from(["id", "extra", "Sku", "stock_count"]))] = draw(JUNK)
    return body


NOT_AN_OBJECT: st.SearchStrategy[bytes] = st.sampled_from(
    [b"", b"[]", b"null", b'"x"', b"{", b'{"a": 1', b"\xff\xfe", b"[" * 5000 + b"]" * 5000]
)


def _body(fields: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[bytes]:
    as_json = _object(fields).map(lambda value: json.dumps(value).encode())
    return st.one_of(as_json, as_json, as_json, NOT_AN_OBJECT)


SKU = st.sampled_from(["FZ-1", "FZ-NEW-2", "KB-101", "fz-1", "", "A" * 33]) | st.from_regex(
    r"[A-Z0-9-]{1,32}", fullmatch=True
)
NAME = st.sampled_from(["Fuzzed", " ", "x" * 201, "Crème brûlée"]) | st.text(max_size=10)
PRICE = st.sampled_from(
    ["12.50", "0.01", "0.00", "-1", "1.234", "1e3", "1000000000.00", " 1.00"]
) | (st.sampled_from([12.5, 19.99, 12, 0, -3, 0.001, 1e10]))
STOCK = st.sampled_from([0, 1, 100, MAX_ID, MAX_ID + 1, -1])
EMAIL = st.sampled_from(
    ["new@example.com", "ADA@example.com", "cleo@example.com", "nope", "é@exämple.com", "a@b.c"]
)
TIER = st.sampled_from(["standard", "gold", "platinum", "GOLD", "diamond"])
QUANTITY = st.sampled_from([1, 2, 100, 1000, 1001, 0, -1])

PRODUCT = {
    "sku": _values(SKU),
    "name": _values(NAME),
    "price": _values(PRICE),
    "stock": _values(STOCK),
}
CUSTOMER = {"name": _values(NAME), "email": _values(EMAIL), "tier": _values(TIER)}
ITEM = {
    "product_id": _values(_ids(ORDERED_PRODUCT, FREE_PRODUCT, 3)),
    "quantity": _values(QUANTITY),
}
ORDER = {
    "customer_id": _values(_ids(CUSTOMER_WITH_ORDERS, FREE_CUSTOMER)),
    "items": _values(st.lists(_object(ITEM), min_size=0, max_size=3))
    | st.just([{"product_id": n, "quantity": 1} for n in range(1, 52)]),
}
LOGIN = {
    "username": _values(st.sampled_from(["admin", "clerk", "viewer", "nobody"])),
    "password": _values(st.sampled_from(["demo", "wrong"])),
}


def _query(params: Mapping[str, st.SearchStrategy[str]]) -> st.SearchStrategy[str]:
    @st.composite
    def query(draw: st.DrawFn) -> str:
        pairs = [(name, draw(values)) for name, values in params.items() if draw(st.booleans())]
        return urlencode(pairs)

    return query()


QUERY_INTEGER = st.sampled_from(["1", "2", "0", "-1", "abc", "", "1.5", "٣", " 1", "99999999999"])
PAGING = {
    "page": QUERY_INTEGER | st.sampled_from([str(MAX_ID), str(MAX_ID + 1)]),
    "per_page": QUERY_INTEGER | st.sampled_from(["5", "100", "101"]),
}

# What a route's request is drawn from: (method, path template, its {id} values, query
# parameters, body fields). A path template's `{id}` takes the values given.
Shape = tuple[
    str,
    str,
    st.SearchStrategy[str] | None,
    Mapping[str, st.SearchStrategy[str]],
    Mapping[str, st.SearchStrategy[Any]] | None,
]
SHAPES: dict[str, Shape] = {
    "auth.token": ("POST", "/auth/token", None, {}, LOGIN),
    "products.list": ("GET", "/products", None, {**PAGING, "q": TEXT | st.just("KB")}, None),
    "products.read": ("GET", "/products/{id}", _path_id(ORDERED_PRODUCT, FREE_PRODUCT), {}, None),
    "products.create": ("POST", "/products", None, {}, PRODUCT),
    "products.replace": (
        "PUT",
        "/products/{id}",
        _path_id(ORDERED_PRODUCT, FREE_PRODUCT),
        {},
        PRODUCT,
    ),
    "products.delete": (
        "DELETE",
        "/products/{id}",
        _path_id(ORDERED_PRODUCT, FREE_PRODUCT),
        {},
        None,
    ),
    "customers.list": ("GET", "/customers", None, {**PAGING, "email": EMAIL | TEXT}, None),
    "customers.read": (
        "GET",
        "/customers/{id}",
        _path_id(CUSTOMER_WITH_ORDERS, FREE_CUSTOMER),
        {},
        None,
    ),
    "customers.create": ("POST", "/customers", None, {}, CUSTOMER),
    "customers.replace": (
        "PUT",
        "/customers/{id}",
        _path_id(CUSTOMER_WITH_ORDERS, FREE_CUSTOMER),
        {},
        CUSTOMER,
    ),
    "customers.delete": (
        "DELETE",
        "/customers/{id}",
        _path_id(CUSTOMER_WITH_ORDERS, FREE_CUSTOMER),
        {},
        None,
    ),
    "orders.list": ("GET", "/orders", None, {**PAGING, "customer_id": QUERY_INTEGER}, None),
    "orders.read": ("GET", "/orders/{id}", _path_id(PLACED_ORDER, CANCELLED_ORDER), {}, None),
    "orders.place": ("POST", "/orders", None, {}, ORDER),
    "orders.cancel": (
        "POST",
        "/orders/{id}/cancel",
        _path_id(PLACED_ORDER, CANCELLED_ORDER),
        {},
        None,
    ),
    "shipping.quote": (
        "GET",
        "/shipping/quote",
        None,
        {"order_id": QUERY_INTEGER | st.sampled_from(["1", "2"])},
        None,
    ),
}

CONTENT_TYPES = st.sampled_from(["application/json"] * 6 + ["text/plain", "application/jsonx"])


def legacy_requests(route_id: str, bearer: Callable[[str], str]) -> st.SearchStrategy[Request]:
    """Requests for the route `route_id`; `bearer(user)` is a token of that demo user's."""
    method, template, ids, params, fields = SHAPES[route_id]

    @st.composite
    def drawn(draw: st.DrawFn) -> Request:
        path = template if ids is None else template.format(id=draw(ids))
        headers = {}
        user = draw(st.sampled_from(TOKENS))
        if user == "forged":
            headers["Authorization"] = "Bearer not-a-token"
        elif user is not None:
            headers["Authorization"] = f"Bearer {bearer(user)}"
        body = None
        if fields is not None:
            body = draw(_body(fields))
            headers["Content-Type"] = draw(CONTENT_TYPES)
        return Request(method, path, draw(_query(params)) if params else "", headers, body)

    return drawn()
