"""The shop's realistic flows, run the same way against `/legacy` and against `/v2`.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000          # web UI, both stacks
    locust -f loadtests/locustfile.py --headless -u 20 -r 10 -t 1m V2User   # one stack
    locust -f loadtests/locustfile.py ... --tags quote                      # one flow alone

The flows are written once (`loadtests/pairs.py`); each stack's dialect is in
`shop/dialects.py`, which the tests read too. Every task sends exactly one request, so a
task rate is a request rate: with `--user-rps R` each user paces itself to R requests per
second, which makes the offered load the same for every arm; with the default 0 users
send back to back. Rows are named `<prefix><template>` (`/v2/products/{id}`). The users of
a stack share one login per Locust process (`pairs.SharedLogin`), and `--measure-s`
leaves their start-up out of the numbers (see `warmup.py`).
"""

from __future__ import annotations

import random
import re
import uuid
from collections import deque
from typing import Any
from urllib.parse import urlencode

from locust import tag, task

from loadtests.pairs import JsonObject, PairedUser
from loadtests.results import SETUP_OPERATIONS
from shop.dialects import LEGACY, V2

_MONEY = re.compile(r"[0-9]{1,9}\.[0-9]{2}")
# Orders need stock; below this a product is left out so that a run cannot empty it.
_MIN_STOCK = 1_000
_RECENT_ORDERS = 50
_SEARCH_TERMS = ["usb", "desk", "KB-", "mouse", "lamp", "cable", "monitor"]


def _money(value: Any) -> bool:
    return isinstance(value, str) and _MONEY.fullmatch(value) is not None


class ShopFlows(PairedUser):
    """The flows both stacks serve, weighted the way a shop is used: reads dominate."""

    abstract = True
    setup_operations = SETUP_OPERATIONS

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.product_ids: list[int] = []
        self.customers: list[tuple[int, str]] = []
        self.placed: deque[int] = deque(maxlen=_RECENT_ORDERS)

    def set_up(self) -> None:
        """The stack's login, and the ids to work with."""
        authorised = self.authorization() is not None
        window = self.dialect.window(0, 100)
        products = self.items(self.list_of("products", window, name="/products"), "products")
        stocked = [p["id"] for p in products if p.get("stock", 0) >= _MIN_STOCK]
        self.product_ids = stocked or [p["id"] for p in products]
        if authorised:
            body = self.list_of("customers", window, name="/customers")
            self.customers = [(c["id"], c["email"]) for c in self.items(body, "customers")]

    def ready(self) -> bool:
        """Logged in, with products and customers to use."""
        return self.authorization() is not None and bool(self.product_ids and self.customers)

    # The flows, weighted the way a shop is used: reads dominate.

    @tag("browse")
    @task(30)
    def browse_products(self) -> None:
        window = self.dialect.window(random.randint(0, 1) * 10, 10)
        self.list_of("products", window, name="/products")

    @tag("search")
    @task(12)
    def search_products(self) -> None:
        term = random.choice(_SEARCH_TERMS)

        def matches(body: JsonObject) -> str | None:
            for product in self.items(body, "products"):
                if not any(term.lower() in product[key].lower() for key in ("name", "sku")):
                    return f"product {product['id']} does not match {term!r}"
            return None

        self.list_of("products", {"q": term}, name="/products?q={q}", then=matches)

    @tag("product")
    @task(25)
    def read_product(self) -> None:
        if not self.product_ids:
            return
        pid = random.choice(self.product_ids)

        def same(body: JsonObject) -> str | None:
            return None if body.get("id") == pid and _money(body.get("price")) else "wrong product"

        self.call("GET", f"/products/{pid}", name="/products/{id}", check=same)

    @tag("customer")
    @task(10)
    def look_up_customer(self) -> None:
        if not self.ready():
            return
        cid, email = random.choice(self.customers)

        def found(body: JsonObject) -> str | None:
            ids = [c["id"] for c in self.items(body, "customers")]
            return None if ids == [cid] else f"expected customer {cid}, got {ids}"

        # Clients type addresses in any case; the lookup is case-insensitive by contract.
        params = {"email": email.upper()}
        self.list_of("customers", params, name="/customers?email={email}", then=found)

    @tag("create_customer")
    @task(3)
    def create_customer(self) -> None:
        if not self.ready():
            return
        email = f"load-{uuid.uuid4().hex}@example.com"

        def created(body: JsonObject) -> str | None:
            return None if body.get("email") == email else f"not the customer sent: {body}"

        payload = {"name": "Load Test", "email": email}
        body = self.call(
            "POST", "/customers", name="/customers", status=201, json=payload, check=created
        )
        if body is not None:
            self.customers.append((body["id"], email))

    @tag("order")
    @task(9)
    def place_order(self) -> None:
        if not self.ready():
            return
        count = min(random.randint(1, 3), len(self.product_ids))
        chosen = random.sample(self.product_ids, k=count)
        items = [{"product_id": pid, "quantity": random.randint(1, 2)} for pid in chosen]
        payload = {"customer_id": random.choice(self.customers)[0], "items": items}

        def placed(body: JsonObject) -> str | None:
            if body.get("status") != "placed" or not _money(body.get("total")):
                return f"not a placed order: {str(body)[:200]}"
            if [item["product_id"] for item in body.get("items", [])] != chosen:
                return "the order's items are not the ones sent"
            return None

        body = self.call("POST", "/orders", name="/orders", status=201, json=payload, check=placed)
        if body is not None:
            self.placed.append(body["id"])

    @tag("cancel")
    @task(3)
    def cancel_order(self) -> None:
        # Keep the newest order for quotes; with nothing else to cancel, place one instead
        # (still one request per task, so the offered rate holds).
        if len(self.placed) < 2:
            self.place_order()
            return
        oid = self.placed.popleft()

        def cancelled(body: JsonObject) -> str | None:
            ok = body.get("id") == oid and body.get("status") == "cancelled"
            return None if ok else f"order {oid} not cancelled: {str(body)[:200]}"

        self.call("POST", f"/orders/{oid}/cancel", name="/orders/{id}/cancel", check=cancelled)

    @tag("quote")
    @task(6)
    def shipping_quote(self) -> None:
        if not self.placed:
            self.place_order()
            return
        oid = self.placed[-1]

        def quoted(body: JsonObject) -> str | None:
            ok = body.get("order_id") == oid and _money(body.get("amount"))
            return None if ok and body.get("currency") else f"not a quote for {oid}: {body}"

        query = urlencode({"order_id": oid})
        self.call(
            "GET", f"/shipping/quote?{query}", name="/shipping/quote?order_id={id}", check=quoted
        )


class LegacyUser(ShopFlows):
    """The Flask app: JSON login, page/per_page windows, lists under the resource's name."""

    dialect = LEGACY


class V2User(ShopFlows):
    """The FastAPI app: OAuth2 password form login, offset/limit windows, lists under items."""

    dialect = V2
