"""Test helpers: a client per stack that speaks each stack's dialect, and scratch databases."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from shop.dialects import DIALECTS
from shop.settings import ShopSettings
from shop_core.security import issue_token

T = TypeVar("T")

DEMO_PASSWORD = "demo"
STACKS = ["legacy", "v2"]


class Stack:
    """Talks to one stack behind the gateway: `/legacy` or `/v2`, in its dialect (the one
    the load tests use, `shop/dialects.py`)."""

    def __init__(self, name: str, base_url: str, tokens: dict[str, str]) -> None:
        self.name = name
        self.dialect = DIALECTS[name]
        self.prefix = self.dialect.prefix
        self.url = base_url + self.prefix
        self.tokens = tokens
        self.http = requests.Session()

    @property
    def invalid_status(self) -> int:
        """The status for input that fails validation: legacy 400, v2 422."""
        return self.dialect.invalid_status

    def request(
        self, method: str, path: str, *, user: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return self.http.request(method, self.url + path, headers=headers, timeout=15, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def login(self, username: str, password: str) -> requests.Response:
        assert self.dialect.login is not None
        return self.post(self.dialect.login_path, **self.dialect.login(username, password))

    def window(
        self, path: str, *, offset: int, limit: int, user: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """A list window in the stack's own paging: page/per_page or offset/limit."""
        params |= self.dialect.window(offset, limit)
        answer = self.get(path, params=params, user=user)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def items(self, body: dict[str, Any], resource: str) -> list[dict[str, Any]]:
        """The list in a list answer: under the resource's plural (legacy) or `items` (v2)."""
        key = self.dialect.list_key.format(resource=resource)
        assert isinstance(body.get(key), list), body
        return self.dialect.items(body, resource)

    # Shortcuts that make the rows a test needs, through this stack.

    def create_product(self, unique: str, **fields: Any) -> dict[str, Any]:
        body = {
            "sku": f"T-{unique}",
            "name": f"Test product {unique}",
            "price": "10.00",
            "stock": 10,
        }
        body |= fields
        answer = self.post("/products", json=body, user="admin")
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def create_customer(self, unique: str, **fields: Any) -> dict[str, Any]:
        body = {"name": f"Customer {unique}", "email": f"c-{unique.lower()}@example.com"} | fields
        answer = self.post("/customers", json=body, user="clerk")
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created

    def place_order(self, customer_id: int, *items: tuple[int, int]) -> requests.Response:
        body = {
            "customer_id": customer_id,
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in items],
        }
        return self.post("/orders", json=body, user="clerk")


def order_to_quote(stack: Stack, unique: str) -> int:
    """The id of a new order (a product and a customer of its own) to ask a quote for."""
    product = stack.create_product(unique, price="4.00")
    customer = stack.create_customer(unique)
    answer = stack.place_order(customer["id"], (product["id"], 2))
    assert answer.status_code == 201, answer.text
    order_id: int = answer.json()["id"]
    return order_id


def assert_error(stack: Stack, answer: requests.Response, status: int) -> dict[str, Any]:
    """The answer is an error in the stack's dialect: legacy JSON or v2 problem details."""
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    problem = stack.dialect.error_problem(status, answer.headers["content-type"], body)
    assert problem is None, problem
    return body


def bearer_for(settings: ShopSettings, user: str, scopes: str) -> dict[str, str]:
    """An Authorization header with a token minted for `user`, as a login would give."""
    token = issue_token(
        subject=user,
        scopes=scopes,
        secret=settings.secret_key.get_secret_value(),
        issuer=settings.token_issuer,
        lifetime_s=settings.token_lifetime_s,
    )
    return {"Authorization": f"Bearer {token.access_token}"}


def wait_for(probe: Callable[[], T | None], what: str, *, timeout_s: float = 10.0) -> T:
    """The first answer of `probe` that is neither None nor False, asked again until
    `timeout_s` has passed.

    For what a test must wait on (a log line written, a pool drained, a lock taken): it
    fails, naming `what`, rather than hoping a fixed sleep was long enough.
    """
    deadline = time.monotonic() + timeout_s
    while (found := probe()) is None or found is False:
        assert time.monotonic() < deadline, f"{what}: not seen within {timeout_s:g} s"
        time.sleep(0.02)
    return found


def assert_rolled_back_for_5xx(change: dict[str, Any]) -> None:
    """`change` (a route's history entry) is the canary judge's rollback of a share of 50
    for v2's 5xx rate, with the reason a reader of the history gets."""
    assert (change["before"]["state"], change["after"]["state"]) == ("canary", "legacy")
    assert change["after"]["share"] == 50
    assert re.fullmatch(
        r"v2 5xx rate 100\.0 % > legacy 0\.0 % \+ 1\.0 % over 60 s \(\d+ / \d+ requests\)",
        change["reason"],
    ), change["reason"]
