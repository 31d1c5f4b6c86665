"""Lists: filters, ordering and windows on each stack's paging."""

from __future__ import annotations

import pytest

from gateway.background_server import BackgroundServer
from shop_core.models import MAX_ID
from tests.support import Stack, assert_error


def test_product_search_matches_name_or_sku_case_insensitively(stack: Stack, unique: str) -> None:
    by_name = stack.create_product(unique, name=f"Walnut {unique} tray")
    by_sku = stack.create_product(unique + "Z", name="Other")
    stack.create_product(unique[::-1] + "Q", name="Unrelated")
    body = stack.window("/products", offset=0, limit=10, q=unique.lower())
    assert body["total"] == 2
    assert [p["id"] for p in stack.items(body, "products")] == [by_name["id"], by_sku["id"]]


def test_like_wildcards_in_the_search_are_literal(stack: Stack) -> None:
    body = stack.window("/products", offset=0, limit=10, q="%")
    assert body["total"] == 0


def test_customer_filter_by_email_is_exact_and_case_insensitive(stack: Stack, unique: str) -> None:
    customer = stack.create_customer(unique, email=f"Find-{unique}@Example.com")
    stack.create_customer(unique + "X", email=f"find-{unique.lower()}x@example.com")
    body = stack.window(
        "/customers", offset=0, limit=10, user="viewer", email=f"find-{unique.lower()}@example.com"
    )
    assert [c["id"] for c in stack.items(body, "customers")] == [customer["id"]]


def test_order_filter_by_customer(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique)
    buyer = stack.create_customer(unique)
    other = stack.create_customer(unique + "O")
    first = stack.place_order(buyer["id"], (product["id"], 1)).json()
    stack.place_order(other["id"], (product["id"], 1))
    second = stack.place_order(buyer["id"], (product["id"], 2)).json()
    body = stack.window("/orders", offset=0, limit=10, user="viewer", customer_id=buyer["id"])
    assert stack.items(body, "orders") == [first, second]
    assert body["total"] == 2


def test_paging_metadata(legacy: Stack, v2: Stack) -> None:
    legacy_body = legacy.get("/products", params={"page": 2, "per_page": 5}).json()
    assert set(legacy_body) == {"products", "page", "per_page", "total"}
    assert (legacy_body["page"], legacy_body["per_page"]) == (2, 5)
    v2_body = v2.get("/products", params={"offset": 5, "limit": 5}).json()
    assert set(v2_body) == {"items", "total", "limit", "offset"}
    assert (v2_body["offset"], v2_body["limit"]) == (5, 5)
    assert legacy_body["total"] == v2_body["total"]
    defaults = legacy.get("/products").json()
    assert (defaults["page"], defaults["per_page"]) == (1, 20)
    # JSON integers, as legacy always wrote them: not 1.0.
    assert all(type(defaults[key]) is int for key in ("page", "per_page", "total"))
    assert (v2.get("/products").json()["limit"], v2.get("/products").json()["offset"]) == (20, 0)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("legacy", {"per_page": 101}),
        ("legacy", {"per_page": 0}),
        ("legacy", {"page": 0}),
        ("legacy", {"page": "two"}),
        ("v2", {"limit": 101}),
        ("v2", {"limit": 0}),
        ("v2", {"offset": -1}),
        ("v2", {"offset": "two"}),
    ],
)
def test_out_of_range_paging_is_rejected(
    gateway: BackgroundServer, tokens: dict[str, str], name: str, params: dict[str, object]
) -> None:
    stack = Stack(name, gateway.url, tokens)
    assert_error(stack, stack.get("/products", params=params), stack.invalid_status)


def test_the_last_page_legacy_takes_is_an_empty_window(legacy: Stack) -> None:
    # Its first row is far past any offset v2 takes: the window starts there all the same.
    answer = legacy.get("/products", params={"page": MAX_ID, "per_page": 100})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["products"], body["page"], body["per_page"]) == ([], MAX_ID, 100)


@pytest.mark.parametrize(
    ("name", "value"), [("page", ""), ("per_page", ""), ("page", str(MAX_ID + 1))]
)
def test_a_blank_or_too_large_page_is_rejected(legacy: Stack, name: str, value: str) -> None:
    answer = legacy.get("/products", params={name: value})
    body = assert_error(legacy, answer, legacy.invalid_status)
    assert set(body["error"]["fields"]) == {name}


# Integers that Python's int() reads, and that a URL does not hold: an underscore, a sign,
# spaces, Arabic-Indic, fullwidth and mathematical digits. Both stacks refuse them.
NOT_INTEGERS = ["1_0", "+5", " 5", "5 ", "\u0663", "\uff15", "\U0001d7d3"]
# (path, the parameter on legacy, the parameter on v2)
INTEGER_PARAMETERS = [
    ("/products", "page", "offset"),
    ("/products", "per_page", "limit"),
    ("/orders", "customer_id", "customer_id"),
    ("/shipping/quote", "order_id", "order_id"),
]


@pytest.mark.parametrize("value", NOT_INTEGERS)
@pytest.mark.parametrize(
    ("path", "legacy_name", "v2_name"),
    INTEGER_PARAMETERS,
    ids=[legacy_name for _, legacy_name, _ in INTEGER_PARAMETERS],
)
def test_query_integers_are_ascii_digits_only(
    stack: Stack, path: str, legacy_name: str, v2_name: str, value: str
) -> None:
    name = legacy_name if stack.name == "legacy" else v2_name
    body = assert_error(
        stack, stack.get(path, params={name: value}, user="viewer"), stack.invalid_status
    )
    if stack.name == "legacy":
        assert set(body["error"]["fields"]) == {name}
    else:
        assert [error["loc"] for error in body["errors"]] == [["query", name]]


# ASCII digits to Arabic-Indic (U+0660..) and fullwidth (U+FF10..) ones.
OTHER_DIGITS = {
    "arabic-indic": str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10))),
    "fullwidth": str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10))),
}


@pytest.mark.parametrize("digits", list(OTHER_DIGITS))
def test_an_id_in_other_digits_names_no_resource(stack: Stack, unique: str, digits: str) -> None:
    product = stack.create_product(unique)
    answer = stack.get(f"/products/{str(product['id']).translate(OTHER_DIGITS[digits])}")
    # Not a number, so no resource: what each stack answers for any non-numeric id (README).
    assert_error(stack, answer, 404 if stack.name == "legacy" else stack.invalid_status)
