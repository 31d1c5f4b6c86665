"""The v2 application factory and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry

from shop_core.accounts import ActiveUsers
from shop_core.settings import Settings
from v2_fastapi.api.main import api_router
from v2_fastapi.carrier import CarrierClient, make_http_client
from v2_fastapi.database import open_database
from v2_fastapi.metrics import UpstreamMetrics
from v2_fastapi.openapi import anchor_token_url, use_problem_media_type
from v2_fastapi.problems import install_problem_handlers
from v2_fastapi.throttle import Limits, Throttle

DESCRIPTION = """\
The shop API, reimplemented on FastAPI. It serves the same rows as the legacy API.

Errors are RFC 9457 problem details (`application/problem+json`). Requests are strict:
unknown fields are rejected, ids and quantities are JSON integers, money is a string
like `"12.50"`. Get a token with *Authorize* (users `admin`, `clerk`, `viewer`).

Single resources carry a strong `ETag` (the same for a row as on the legacy API); it changes
whenever the resource does, an order taking stock included. `PUT`, `PATCH` and `DELETE` of
products and customers honour `If-Match`: a tag that is no longer current gets 412 and
changes nothing. If-Match is optional, and recommended: a `PUT` without it replaces every
field, stock included, even if an order took stock since the client read the product.
`GET` of a single resource answers 304 to an `If-None-Match` naming its current tag.
"""

TAGS = [
    {"name": "auth", "description": "Access tokens (OAuth2 password flow)."},
    {"name": "products", "description": "The catalogue: public to read, `admin` to change."},
    {"name": "customers", "description": "Customers: `read` to look, `write` to change."},
    {"name": "orders", "description": "Orders: `read` to look, `write` to place and cancel."},
    {"name": "shipping", "description": "Quotes from the carrier service (`read`)."},
    {"name": "health", "description": "Liveness of the v2 stack."},
]


class _ShopAPI(FastAPI):
    mount_path = ""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = use_problem_media_type(super().openapi())
            self.openapi_schema = anchor_token_url(document, self.mount_path)
        return self.openapi_schema


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the database engine and the carrier's HTTP client; close both on the way out.

    A mounted app gets no lifespan events: the gateway enters this context itself.
    """
    settings: Settings = app.state.settings
    # One way to the database for every route, the token check included (see database.py).
    db = open_database(settings.database_url, pool_size=settings.db_pool_size)
    http = make_http_client(timeout_s=settings.carrier_timeout_s)
    # The quota is the whole `gateway serve`'s; each of its processes keeps to its share.
    limits = Limits.shared(
        max_rps=settings.carrier_max_rps,
        burst=settings.carrier_burst,
        max_concurrency=settings.carrier_max_concurrency,
        processes=settings.workers,
    )
    carrier = CarrierClient(
        base_url=settings.carrier_url,
        timeout_s=settings.carrier_timeout_s,
        http=http,
        throttle=Throttle(limits),
        retries=settings.carrier_retries,
        max_wait_s=settings.carrier_max_wait_s,
        metrics=app.state.upstream_metrics,
    )
    app.state.db = db
    app.state.carrier = carrier
    try:
        yield
    finally:
        await http.aclose()
        await db.dispose()


def _operation_id(route: APIRoute) -> str:
    # The endpoint's name (unique across routers), so generated clients read well.
    return route.name


def create_app(settings: Settings, *, mount_path: str = "") -> FastAPI:
    """The v2 app; `mount_path` is where the gateway mounts it, for the OpenAPI servers."""
    app = _ShopAPI(
        title="Shop API v2",
        version="2.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        servers=[{"url": mount_path}] if mount_path else None,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # Tracebacks in answers only where the settings allow it: development.
        debug=settings.debug,
    )
    app.mount_path = mount_path
    install_problem_handlers(app)
    app.state.settings = settings
    app.state.users = ActiveUsers(ttl_s=settings.user_cache_ttl_s)
    # A registry of the app's own (tests build several apps in one process); whoever serves
    # the app shows it on /metrics (the shop: through `AppPair.metrics`).
    app.state.upstream_metrics = UpstreamMetrics(
        CollectorRegistry(), upstreams=(CarrierClient.UPSTREAM,)
    )
    app.include_router(api_router)
    return app
