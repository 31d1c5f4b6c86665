"""The legacy shop API: a Flask app of its era (blueprints, marshmallow, blocking I/O).

`create_app(config)` is a plain WSGI app: it runs alone under gunicorn (the baseline of
every comparison) or mounted by the gateway, and imports neither `gateway` nor `v2_fastapi`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response
from werkzeug.routing import IntegerConverter, Map

from legacy_flask import auth, customers, db, errors, health, orders, products, shipping
from legacy_flask.db import dispose_engine
from shop_core.models import MAX_ID

__all__ = ["create_app", "dispose_engine"]

DEFAULTS: dict[str, Any] = {
    "DB_POOL_SIZE": 10,
    "TOKEN_ISSUER": "flask-fastapi-gateway",
    "TOKEN_LIFETIME_S": 3600,
    "USER_CACHE_TTL_S": 5.0,
    "CARRIER_URL": None,
    "CARRIER_TIMEOUT_S": 2.0,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "LOGIN_MAX_FAILURES_PER_USERNAME": 5,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
    "LOGIN_FAILURE_WINDOW_S": 900,
    "PASSWORD_HASH_CONCURRENCY": 4,
    "PASSWORD_HASH_WAIT_S": 1.0,
    "DEBUG": False,
    "TESTING": False,
}
REQUIRED = ("DATABASE_URL", "SECRET_KEY")


class JSONDefaultResponse(Response):
    """Answers without a body (204, automatic OPTIONS) are not labelled text/html either."""

    default_mimetype = "application/json"


class IdConverter(IntegerConverter):
    """`<id:...>`: a positive 32-bit integer; anything else in its place is a 404."""

    # Werkzeug's `\d+` is Unicode's: `/customers/٣` would be customer 3.
    regex = r"[0-9]+"

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from a config mapping (the gateway passes `Settings.legacy_config()`)."""
    # An API has no static files: without this, Flask serves /static/<path> from the package.
    app = Flask(__name__, static_folder=None)
    app.response_class = JSONDefaultResponse
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(test_config or {})
    missing = [key for key in REQUIRED if not app.config.get(key)]
    if missing:
        raise RuntimeError(f"legacy_flask needs {', '.join(missing)} in its config")
    # Keep keys in the documented order; both stacks must answer the same JSON.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["id"] = IdConverter

    db.init_app(app)
    auth.init_app(app)
    errors.init_app(app)
    for module in (auth, products, customers, orders, shipping, health):
        app.register_blueprint(module.bp)
    return app
