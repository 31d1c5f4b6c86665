"""Products, on both stacks: the rows of API.md's endpoint table."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import Engine, select

from shop_core.models import Product
from tests.support import Stack, assert_error

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_create_answers_201_with_location_and_the_product(
    stack: Stack, unique: str, db: Engine
) -> None:
    answer = stack.post(
        "/products",
        json={"sku": f"N-{unique}", "name": "Desk fan", "price": "19.90", "stock": 7},
        user="admin",
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert list(body) == ["id", "sku", "name", "price", "stock", "created_at", "updated_at"]
    assert body["sku"] == f"N-{unique}"
    assert (body["name"], body["price"], body["stock"]) == ("Desk fan", "19.90", 7)
    assert TIMESTAMP.match(body["created_at"]) and TIMESTAMP.match(body["updated_at"])
    assert answer.headers["Location"] == f"{stack.prefix}/products/{body['id']}"
    with db.connect() as conn:
        row = conn.execute(select(Product).where(Product.id == body["id"])).one()
    assert (row.sku, row.price_cents, row.stock) == (f"N-{unique}", 1990, 7)


def test_get_one_and_404(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique)
    assert stack.get(f"/products/{product['id']}").json() == product
    assert_error(stack, stack.get("/products/999999999"), 404)


def test_products_are_public_but_writes_need_admin(stack: Stack, unique: str) -> None:
    assert stack.get("/products").status_code == 200
    body = {"sku": f"A-{unique}", "name": "x", "price": "1.00", "stock": 1}
    assert_error(stack, stack.post("/products", json=body), 401)
    assert_error(stack, stack.post("/products", json=body, user="clerk"), 403)
    assert_error(stack, stack.post("/products", json=body, user="viewer"), 403)


def test_401_names_the_bearer_scheme(stack: Stack) -> None:
    answer = stack.post("/products", json={})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_duplicate_sku_is_409_and_changes_nothing(stack: Stack, unique: str, db: Engine) -> None:
    stack.create_product(unique, name="first")
    answer = stack.post(
        "/products",
        json={"sku": f"T-{unique}", "name": "second", "price": "2.00", "stock": 1},
        user="admin",
    )
    body = assert_error(stack, answer, 409)
    # The sku's own conflict, naming it; not the general answer to a refused change.
    message = body["error"]["message"] if stack.name == "legacy" else body["detail"]
    assert f"T-{unique}" in message
    with db.connect() as conn:
        names = conn.scalars(select(Product.name).where(Product.sku == f"T-{unique}")).all()
    assert names == ["first"]


@pytest.mark.parametrize(
    "field",
    [
        {"sku": "lower-case"},
        {"sku": ""},
        {"sku": "X" * 33},
        {"name": ""},
        {"name": "n" * 201},
        {"price": "0.00"},
        {"price": "-1.00"},
        {"price": "1.234"},
        {"price": "ten"},
        {"stock": -1},
        {"stock": "5"},
    ],
)
def test_invalid_products_are_rejected_and_nothing_is_written(
    stack: Stack, unique: str, db: Engine, field: dict[str, object]
) -> None:
    body = {"sku": f"V-{unique}", "name": "valid", "price": "1.00", "stock": 1} | field
    assert_error(stack, stack.post("/products", json=body, user="admin"), stack.invalid_status)
    with db.connect() as conn:
        assert conn.scalar(select(Product.id).where(Product.sku == body["sku"])) is None


def test_a_body_that_is_not_json_is_rejected(stack: Stack) -> None:
    answer = stack.post(
        "/products",
        data=b'{"sku": "NOT-JSON", "name":',
        headers={"Content-Type": "application/json"},
        user="admin",
    )
    assert_error(stack, answer, stack.invalid_status)


@pytest.mark.parametrize(
    "raw",
    [b"[1, 2]", b'{"sku": "SURROGATE", "name": "\\ud800", "price": "1.00", "stock": 1}'],
    ids=["an-array", "a-lone-surrogate"],
)
def test_legacy_refuses_a_body_that_is_no_json_object_of_text(legacy: Stack, raw: bytes) -> None:
    # An array, or text that is no Unicode (a lone surrogate escape): no field to name.
    headers = {"Content-Type": "application/json"}
    answer = legacy.post("/products", data=raw, headers=headers, user="admin")
    error = assert_error(legacy, answer, 400)["error"]
    assert error["code"] == "bad_request"
    assert "fields" not in error


def test_missing_fields_are_rejected(stack: Stack) -> None:
    answer = stack.post("/products", json={"name": "no sku"}, user="admin")
    body = assert_error(stack, answer, stack.invalid_status)
    if stack.name == "legacy":
        assert "sku" in body["error"]["fields"]
    else:
        assert any("sku" in error["loc"] for error in body["errors"])


def test_legacy_accepts_a_number_for_money_v2_does_not(
    legacy: Stack, v2: Stack, unique: str
) -> None:
    body = {"sku": f"M-{unique}", "name": "lenient", "price": 12.5, "stock": 1}
    answer = legacy.post("/products", json=body, user="admin")
    assert answer.status_code == 201, answer.text
    assert answer.json()["price"] == "12.50"
    strict = v2.post("/products", json=body | {"sku": f"M2-{unique}"}, user="admin")
    assert_error(v2, strict, 422)


# JSON numbers that no binary float holds exactly: value * 100 falls short of the cents
# (19.99 * 100 == 1998.9999999999998), so only the number's shortest text reads them right.
@pytest.mark.parametrize(
    ("number", "price"),
    [(19.99, "19.99"), (0.29, "0.29"), (1.15, "1.15"), (4.35, "4.35"), (9.95, "9.95"), (7, "7.00")],
)
def test_legacy_reads_a_money_number_as_written(
    legacy: Stack, unique: str, db: Engine, number: float, price: str
) -> None:
    body = {"sku": f"F-{unique}", "name": "lenient", "price": number, "stock": 1}
    answer = legacy.post("/products", json=body, user="admin")
    assert answer.status_code == 201, answer.text
    assert answer.json()["price"] == price
    with db.connect() as conn:
        cents = conn.scalar(select(Product.price_cents).where(Product.sku == f"F-{unique}"))
    assert cents == round(float(price) * 100)


def test_legacy_leniency_holds_with_a_charset_in_the_content_type(
    legacy: Stack, unique: str
) -> None:
    body = {"sku": f"C-{unique}", "name": "charset", "price": 12.5, "stock": 1, "colour": "red"}
    answer = legacy.post(
        "/products",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        user="admin",
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["price"] == "12.50"


def test_v2_rejects_unknown_fields(v2: Stack, unique: str) -> None:
    body = {"sku": f"U-{unique}", "name": "x", "price": "1.00", "stock": 1, "colour": "red"}
    assert_error(v2, v2.post("/products", json=body, user="admin"), 422)


def test_put_replaces_every_field(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique)
    replacement = {"sku": f"R-{unique}", "name": "Renamed", "price": "3.50", "stock": 42}
    answer = stack.put(f"/products/{product['id']}", json=replacement, user="admin")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {k: body[k] for k in replacement} == replacement
    assert body["created_at"] == product["created_at"]
    assert body["updated_at"] >= product["updated_at"]
    partial = stack.put(f"/products/{product['id']}", json={"name": "only"}, user="admin")
    assert_error(stack, partial, stack.invalid_status)
    assert_error(stack, stack.put("/products/999999999", json=replacement, user="admin"), 404)


def test_put_to_a_taken_sku_is_409(stack: Stack, unique: str) -> None:
    first = stack.create_product(unique)
    second = stack.create_product(unique + "B")
    body = {"sku": first["sku"], "name": "clash", "price": "1.00", "stock": 1}
    assert_error(stack, stack.put(f"/products/{second['id']}", json=body, user="admin"), 409)


def test_patch_is_v2_only(legacy: Stack, v2: Stack, unique: str) -> None:
    product = v2.create_product(unique)
    answer = v2.patch(f"/products/{product['id']}", json={"stock": 3}, user="admin")
    assert answer.status_code == 200, answer.text
    assert answer.json()["stock"] == 3
    assert answer.json()["name"] == product["name"]
    assert_error(
        v2, v2.patch(f"/products/{product['id']}", json={"stock": None}, user="admin"), 422
    )
    assert_error(legacy, legacy.patch(f"/products/{product['id']}", json={}, user="admin"), 405)


def test_delete_is_204_then_404(stack: Stack, unique: str, db: Engine) -> None:
    product = stack.create_product(unique)
    answer = stack.delete(f"/products/{product['id']}", user="admin")
    assert answer.status_code == 204
    assert answer.content == b""
    assert "html" not in answer.headers.get("Content-Type", "")
    assert_error(stack, stack.get(f"/products/{product['id']}"), 404)
    assert_error(stack, stack.delete(f"/products/{product['id']}", user="admin"), 404)
    with db.connect() as conn:
        assert conn.scalar(select(Product.id).where(Product.id == product["id"])) is None


def test_answers_without_a_body_say_no_length(stack: Stack, unique: str) -> None:
    # RFC 9110: no Content-Length on a 204; on a 304 it could only be the unsent body's.
    product = stack.create_product(unique)
    tag = stack.get(f"/products/{product['id']}").headers["ETag"]
    unchanged = stack.get(f"/products/{product['id']}", headers={"If-None-Match": tag})
    deleted = stack.delete(f"/products/{product['id']}", user="admin")
    assert (unchanged.status_code, deleted.status_code) == (304, 204)
    assert "Content-Length" not in unchanged.headers
    assert "Content-Length" not in deleted.headers


def test_a_product_in_an_order_cannot_be_deleted(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique)
    customer = stack.create_customer(unique)
    assert stack.place_order(customer["id"], (product["id"], 1)).status_code == 201
    assert_error(stack, stack.delete(f"/products/{product['id']}", user="admin"), 409)
    assert stack.get(f"/products/{product['id']}").status_code == 200
