"""The shop's route ledger: every legacy route, with the v2 route that can serve it.

Paths and methods are the same on both stacks (API.md); what differs is the contract,
and the adapters' parts bridge it: the legacy error format (400 naming the fields where
v2 says 422), paging by `page/per_page` under the resource's plural, the lenient bodies
(money as a number, unknown fields ignored), the JSON login, `Location` under /legacy.
"""

from __future__ import annotations

from gateway.ledger.adapters import (
    FormLogin,
    LegacyErrors,
    LegacyLocation,
    LenientBody,
    PageWindow,
    legacy_only,
    paired,
)
from gateway.ledger.compare import ShadowRules
from gateway.ledger.model import Ledger
from gateway.ledger.rules import int_converter
from shop.errors import LEGACY_CODES, legacy_error_with_fields
from shop_core.models import MAX_ID

# Shadow comparisons: the prose of an error (its message, the messages naming a field) is
# each stack's own wording, a documented difference (API.md); its status, code and the
# fields it names are compared. Customers' emails are never kept in a mismatch.
READS = ShadowRules(ignore=("/error/message", "/error/fields/*/*"))
CUSTOMER_READS = ShadowRules(ignore=READS.ignore, sensitive=frozenset({"email"}))
ERRORS = LegacyErrors(legacy_error_with_fields, codes=LEGACY_CODES)
LOCATION = LegacyLocation()
PRODUCT = LenientBody(
    {"sku": None, "name": None, "price": None, "stock": None}, money=frozenset({"price"})
)
CUSTOMER = LenientBody({"name": None, "email": None, "tier": None})
ORDER = LenientBody({"customer_id": None, "items": {"product_id": None, "quantity": None}})


def _window(key: str) -> PageWindow:
    # legacy's largest page and v2's largest offset are both the largest id.
    return PageWindow(key, max_page=MAX_ID, max_offset=MAX_ID)


def shop_ledger() -> Ledger:
    return Ledger(
        routes=(
            paired("auth.token", "POST /auth/token", "POST /auth/token", ERRORS, FormLogin()),
            legacy_only(
                "health",
                "GET /health",
                reason="each stack reports its own liveness ({'stack': 'legacy'}); the "
                "gateway's /health covers both",
            ),
            paired(
                "products.list",
                "GET /products",
                "GET /products",
                ERRORS,
                _window("products"),
                shadow=READS,
            ),
            paired(
                "products.read",
                "GET /products/<id:product_id>",
                "GET /products/{product_id}",
                ERRORS,
                shadow=READS,
            ),
            paired(
                "products.create", "POST /products", "POST /products", ERRORS, LOCATION, PRODUCT
            ),
            paired(
                "products.replace",
                "PUT /products/<id:product_id>",
                "PUT /products/{product_id}",
                ERRORS,
                PRODUCT,
            ),
            paired(
                "products.delete",
                "DELETE /products/<id:product_id>",
                "DELETE /products/{product_id}",
                ERRORS,
            ),
            paired(
                "customers.list",
                "GET /customers",
                "GET /customers",
                ERRORS,
                _window("customers"),
                shadow=CUSTOMER_READS,
            ),
            paired(
                "customers.read",
                "GET /customers/<id:customer_id>",
                "GET /customers/{customer_id}",
                ERRORS,
                shadow=CUSTOMER_READS,
            ),
            paired(
                "customers.create", "POST /customers", "POST /customers", ERRORS, LOCATION, CUSTOMER
            ),
            paired(
                "customers.replace",
                "PUT /customers/<id:customer_id>",
                "PUT /customers/{customer_id}",
                ERRORS,
                CUSTOMER,
            ),
            paired(
                "customers.delete",
                "DELETE /customers/<id:customer_id>",
                "DELETE /customers/{customer_id}",
                ERRORS,
            ),
            paired(
                "orders.list",
                "GET /orders",
                "GET /orders",
                ERRORS,
                _window("orders"),
                shadow=READS,
            ),
            paired(
                "orders.read",
                "GET /orders/<id:order_id>",
                "GET /orders/{order_id}",
                ERRORS,
                shadow=READS,
            ),
            paired("orders.place", "POST /orders", "POST /orders", ERRORS, LOCATION, ORDER),
            paired(
                "orders.cancel",
                "POST /orders/<id:order_id>/cancel",
                "POST /orders/{order_id}/cancel",
                ERRORS,
            ),
            paired(
                "shipping.quote",
                "GET /shipping/quote",
                "GET /shipping/quote",
                ERRORS,
                shadow=READS,
            ),
        ),
        # legacy_flask's `<id:...>`: a positive 32-bit integer (IdConverter).
        converters={"id": int_converter(1, MAX_ID)},
    )
