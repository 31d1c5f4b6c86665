"""Conditional requests: ETags on single resources, If-Match on changes, If-None-Match on reads.

The audit's lost update: an admin reads a product (stock 100), an order takes 30 (stock 70),
the admin PUTs a new price with the stock read earlier. With If-Match that PUT is a 412.
"""

from __future__ import annotations

import http.client
import re
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import Engine, select, text

from gateway.background_server import BackgroundServer
from shop_core.database import WRITE_OPTIONS, is_sqlite
from shop_core.etags import etag_of
from shop_core.inventory import take_stock
from shop_core.models import Product
from tests.support import Stack, assert_error, wait_for

STALE = '"00000000000000000000000000000000"'


def _etag(answer: requests.Response) -> str:
    """The answer's ETag: strong, and the tag of the JSON object it carries."""
    tag = answer.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag), tag
    assert tag == etag_of(answer.json())
    return tag


def _read(stack: Stack, path: str) -> tuple[dict[str, Any], str]:
    answer = stack.get(path, user="admin")
    assert answer.status_code == 200, answer.text
    return answer.json(), _etag(answer)


def _replacement(product: dict[str, Any], **changes: Any) -> dict[str, Any]:
    fields = {key: product[key] for key in ("sku", "name", "price", "stock")}
    return fields | changes


def _stock(db: Engine, product_id: int) -> int | None:
    with db.connect() as conn:
        return conn.scalar(select(Product.stock).where(Product.id == product_id))


def _assert_precondition_failed(stack: Stack, answer: requests.Response) -> None:
    body = assert_error(stack, answer, 412)
    if stack.name == "legacy":
        assert body["error"]["code"] == "precondition_failed"
    else:
        assert body["title"] == "Precondition Failed"
    assert "If-Match" in answer.text


def test_every_single_resource_answer_has_the_same_etag_on_both_stacks(
    legacy: Stack, v2: Stack, unique: str
) -> None:
    writers = {"legacy": legacy, "v2": v2}
    for name, writer in writers.items():
        other = v2 if name == "legacy" else legacy
        tag = f"{unique}{name[0].upper()}"
        product = {"sku": f"E-{tag}", "name": f"Tagged {tag}", "price": "4.20", "stock": 9}
        created = writer.post("/products", json=product, user="admin")
        assert created.status_code == 201, created.text
        path = f"/products/{created.json()['id']}"
        assert _read(writer, path)[1] == _read(other, path)[1] == _etag(created)

        replaced = writer.put(path, json=product | {"stock": 8}, user="admin")
        assert _read(other, path)[1] == _etag(replaced) != _etag(created)

        customer = writer.post(
            "/customers", json={"name": tag, "email": f"e-{tag.lower()}@example.com"}, user="clerk"
        )
        assert customer.status_code == 201, customer.text
        customer_path = f"/customers/{customer.json()['id']}"
        assert _read(other, customer_path)[1] == _etag(customer)

        order = writer.place_order(customer.json()["id"], (created.json()["id"], 2))
        assert order.status_code == 201, order.text
        order_path = f"/orders/{order.json()['id']}"
        assert _read(writer, order_path)[1] == _read(other, order_path)[1] == _etag(order)

        cancelled = writer.post(f"{order_path}/cancel", user="clerk")
        assert cancelled.status_code == 200, cancelled.text
        assert _read(other, order_path)[1] == _etag(cancelled) != _etag(order)

    patched = v2.patch(customer_path, json={"tier": "gold"}, user="clerk")
    assert patched.status_code == 200, patched.text
    assert _read(legacy, customer_path)[1] == _etag(patched)


def test_the_etag_changes_when_an_order_takes_stock_and_when_it_gives_it_back(
    stack: Stack, unique: str
) -> None:
    product = stack.create_product(unique, stock=10)
    customer = stack.create_customer(unique)
    path = f"/products/{product['id']}"
    _, before = _read(stack, path)
    order = stack.place_order(customer["id"], (product["id"], 3)).json()
    taken, after_order = _read(stack, path)
    assert taken["stock"] == 7 and after_order != before
    stack.post(f"/orders/{order['id']}/cancel", user="clerk")
    given_back, after_cancel = _read(stack, path)
    # The same stock as at first, yet a later `updated_at`: a new tag.
    assert given_back["stock"] == 10 and after_cancel not in (before, after_order)


def test_the_audited_lost_update_is_a_412_with_if_match(
    stack: Stack, unique: str, db: Engine
) -> None:
    product = stack.create_product(unique, price="10.00", stock=100)
    customer = stack.create_customer(unique)
    path = f"/products/{product['id']}"
    read, tag = _read(stack, path)  # the admin's screen: stock 100
    order = stack.place_order(customer["id"], (product["id"], 30))
    assert order.status_code == 201, order.text
    assert _stock(db, product["id"]) == 70

    stale_put = stack.put(
        path, json=_replacement(read, price="12.00"), headers={"If-Match": tag}, user="admin"
    )

    _assert_precondition_failed(stack, stale_put)
    now, _ = _read(stack, path)
    assert (now["stock"], now["price"]) == (70, "10.00")
    assert _stock(db, product["id"]) == 70
    cancel = stack.post(f"/orders/{order.json()['id']}/cancel", user="clerk")
    assert cancel.status_code == 200, cancel.text
    assert _stock(db, product["id"]) == 100

    # The admin reads again and changes the price on what is there now.
    fresh, fresh_tag = _read(stack, path)
    retry = stack.put(
        path, json=_replacement(fresh, price="12.00"), headers={"If-Match": fresh_tag}, user="admin"
    )
    assert retry.status_code == 200, retry.text
    assert (retry.json()["stock"], retry.json()["price"]) == (100, "12.00")
    assert _etag(retry) == _read(stack, path)[1]


@pytest.mark.parametrize("resource", ["products", "customers"])
def test_changes_with_the_current_tag_succeed_and_with_an_old_one_change_nothing(
    stack: Stack, unique: str, resource: str
) -> None:
    if resource == "products":
        user, row = "admin", stack.create_product(unique)
        changed = _replacement(row, name=f"Renamed {unique}")
    else:
        user, row = "clerk", stack.create_customer(unique)
        changed = {"name": f"Renamed {unique}", "email": row["email"], "tier": "gold"}
    path = f"/{resource}/{row['id']}"
    first = _read(stack, path)[1]

    put = stack.put(path, json=changed, headers={"If-Match": first}, user=user)
    assert put.status_code == 200, put.text
    second = _etag(put)
    assert second != first

    stale = {"If-Match": first}
    _assert_precondition_failed(stack, stack.put(path, json=changed, headers=stale, user=user))
    _assert_precondition_failed(stack, stack.delete(path, headers=stale, user=user))
    assert _read(stack, path) == (put.json(), second)

    deleted = stack.delete(path, headers={"If-Match": second}, user=user)
    assert deleted.status_code == 204, deleted.text
    assert_error(stack, stack.get(path, user=user), 404)


def test_v2_patch_honours_if_match(v2: Stack, unique: str) -> None:
    product = v2.create_product(unique, stock=5)
    path = f"/products/{product['id']}"
    tag = _read(v2, path)[1]
    patched = v2.patch(path, json={"price": "7.00"}, headers={"If-Match": tag}, user="admin")
    assert patched.status_code == 200, patched.text
    stale = v2.patch(path, json={"stock": 50}, headers={"If-Match": tag}, user="admin")
    _assert_precondition_failed(v2, stale)
    assert _read(v2, path) == (patched.json(), _etag(patched))


def test_star_and_lists_match_weak_tags_do_not(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique)
    path = f"/products/{product['id']}"

    def put(if_match: str, stock: int) -> requests.Response:
        body = _replacement(product, stock=stock)
        return stack.put(path, json=body, headers={"If-Match": if_match}, user="admin")

    assert put("*", 11).status_code == 200
    current = _read(stack, path)[1]
    assert put(f"{STALE}, {current}", 12).status_code == 200
    current = _read(stack, path)[1]
    _assert_precondition_failed(stack, put(f"W/{current}", 13))
    _assert_precondition_failed(stack, put(current.strip('"'), 13))  # unquoted: no tag
    assert _read(stack, path)[0]["stock"] == 12


def test_if_match_on_several_header_lines_is_one_list(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique)
    path = f"{stack.prefix}/products/{product['id']}"
    current = _read(stack, f"/products/{product['id']}")[1]
    url = urlsplit(stack.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=15)
    try:
        conn.putrequest("DELETE", path)
        conn.putheader("Authorization", f"Bearer {stack.tokens['admin']}")
        conn.putheader("If-Match", STALE)
        conn.putheader("If-Match", current)
        conn.endheaders()
        assert conn.getresponse().status == 204
    finally:
        conn.close()


def test_a_change_without_if_match_is_still_accepted(stack: Stack, unique: str, db: Engine) -> None:
    """The documented decision: If-Match is optional, so existing clients work unchanged.

    Without it a PUT replaces every field as sent, stock included: the lost update the
    audit found is what a client that sends no If-Match still risks.
    """
    product = stack.create_product(unique, stock=100)
    customer = stack.create_customer(unique)
    assert stack.place_order(customer["id"], (product["id"], 30)).status_code == 201
    path = f"/products/{product['id']}"
    put = stack.put(path, json=_replacement(product, price="12.00"), user="admin")
    assert put.status_code == 200, put.text
    assert put.json()["stock"] == 100 and _stock(db, product["id"]) == 100
    deleted = stack.delete(path, user="admin")
    assert_error(stack, deleted, 409)  # in an order: If-Match or not, never deleted


def test_a_missing_resource_is_404_whatever_if_match_says(stack: Stack, unique: str) -> None:
    product = {"sku": f"M-{unique}", "name": "Missing", "price": "1.00", "stock": 1}
    customer = {"name": "Missing", "email": f"m-{unique.lower()}@example.com", "tier": "gold"}
    for resource, body in (("products", product), ("customers", customer)):
        path = f"/{resource}/2147483000"
        for if_match in ("*", STALE):
            headers = {"If-Match": if_match}
            put = stack.put(path, json=body, headers=headers, user="admin")
            assert_error(stack, put, 404)
            assert_error(stack, stack.delete(path, headers=headers, user="admin"), 404)


def test_if_none_match_gets_a_304_while_the_copy_is_current(stack: Stack, unique: str) -> None:
    product = stack.create_product(unique)
    customer = stack.create_customer(unique)
    order = stack.place_order(customer["id"], (product["id"], 1)).json()
    product_path = f"/products/{product['id']}"
    product_tag = _read(stack, product_path)[1]
    for path in (
        f"/products/{product['id']}",
        f"/customers/{customer['id']}",
        f"/orders/{order['id']}",
    ):
        tag = _read(stack, path)[1]
        for if_none_match in (tag, f"W/{tag}", f"{STALE}, {tag}", "*"):
            cached = stack.get(path, headers={"If-None-Match": if_none_match}, user="admin")
            assert cached.status_code == 304, (path, if_none_match, cached.text)
            assert cached.content == b""
            assert cached.headers["ETag"] == tag
        fresh = stack.get(path, headers={"If-None-Match": STALE}, user="admin")
        assert fresh.status_code == 200 and _etag(fresh) == tag
    changed = stack.put(product_path, json=_replacement(product, stock=1), user="admin")
    again = stack.get(product_path, headers={"If-None-Match": product_tag}, user="admin")
    assert again.status_code == 200 and _etag(again) == _etag(changed)


def _lock_waiters(db: Engine) -> int:
    with db.connect() as conn:
        query = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return conn.scalar(query) or 0


def test_if_match_is_checked_on_the_row_locked_for_the_write(
    stack: Stack, unique: str, db: Engine, database_url: str
) -> None:
    """An order that commits while a conditional PUT waits for the row makes the PUT a 412.

    The test holds the row as an order does (the same statement, in an open transaction),
    sends the PUT, and commits once the PUT waits for the lock. Had the PUT compared its
    tag before locking the row, it would have compared it with the stock before the order.
    On SQLite writers queue for the database's write lock instead, from the start of their
    transaction: the PUT reads the row only after the commit, with the same outcome.
    """
    product = stack.create_product(unique, stock=100)
    path = f"/products/{product['id']}"
    read, tag = _read(stack, path)
    answers: list[requests.Response] = []
    with db.connect().execution_options(**WRITE_OPTIONS) as conn:
        transaction = conn.begin()
        conn.execute(take_stock(product["id"], 30))
        put = threading.Thread(
            target=lambda: answers.append(
                stack.put(
                    path,
                    json=_replacement(read, price="12.00"),
                    headers={"If-Match": tag},
                    user="admin",
                )
            )
        )
        put.start()
        if not is_sqlite(database_url):
            wait_for(lambda: _lock_waiters(db) > 0, "the PUT waiting for the row")
        transaction.commit()
    put.join(timeout=30)
    assert len(answers) == 1
    _assert_precondition_failed(stack, answers[0])
    assert _stock(db, product["id"]) == 70
    assert _read(stack, path)[0]["price"] == read["price"]


def test_the_v2_openapi_document_describes_conditional_requests(
    gateway: BackgroundServer,
) -> None:
    document = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()
    paths = document["paths"]
    for resource, key in (("products", "product_id"), ("customers", "customer_id")):
        one = paths[f"/{resource}/{{{key}}}"]
        for method in ("put", "patch", "delete"):
            operation = one[method]
            headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
            assert headers["If-Match"]["required"] is False
            assert "412" in headers["If-Match"]["description"]
            assert "application/problem+json" in operation["responses"]["412"]["content"]
        for method, status in (("get", "200"), ("put", "200"), ("patch", "200")):
            assert "ETag" in one[method]["responses"][status]["headers"]
        assert "ETag" in paths[f"/{resource}"]["post"]["responses"]["201"]["headers"]
        assert "If-None-Match" in {p["name"] for p in one["get"]["parameters"]}
        assert "304" in one["get"]["responses"]
    assert "ETag" in paths["/orders/{order_id}"]["get"]["responses"]["200"]["headers"]
    assert "ETag" in paths["/orders/{order_id}/cancel"]["post"]["responses"]["200"]["headers"]
    assert "If-Match" in document["info"]["description"]
