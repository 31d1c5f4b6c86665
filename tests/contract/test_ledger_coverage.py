"""The shop's ledger lists every legacy route, and pairs each with a v2 route that exists.

Read from the apps' own route tables (Flask's `url_map`, the v2 app's routes), as the
auth matrix does: a route added to the Flask app without a ledger row fails here.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

import legacy_flask
import v2_fastapi
from shop.ledger import shop_ledger
from shop.settings import ShopSettings

# Methods Werkzeug adds to every rule by itself; the ledger lists the methods the code has.
AUTOMATIC = {"HEAD", "OPTIONS"}


def _flask_routes(settings: ShopSettings) -> set[tuple[str, str]]:
    app = legacy_flask.create_app(settings.legacy_config(threads=1, max_body_bytes=1024))
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - AUTOMATIC
    }


def _v2_routes(settings: ShopSettings) -> set[tuple[str, str]]:
    app: FastAPI = v2_fastapi.create_app(settings)
    # Included routers are entries of their own; these are the routes as the app matches them.
    return {
        (method, context.path)
        for context in iter_route_contexts(app.routes)
        if context.methods and context.path
        for method in context.methods
    }


def test_every_legacy_route_is_in_the_ledger_and_nothing_else(settings: ShopSettings) -> None:
    ledger = {(route.legacy_method, route.legacy_rule) for route in shop_ledger().routes}
    flask = _flask_routes(settings)
    assert flask - ledger == set(), "legacy routes missing from shop/ledger.py"
    assert ledger - flask == set(), "ledger rows for routes the legacy app does not have"


def test_each_pair_names_a_v2_route_and_has_an_adapter(settings: ShopSettings) -> None:
    v2 = _v2_routes(settings)
    for route in shop_ledger().routes:
        if route.legacy_only is not None:
            assert route.adapter is None, route.id
            continue
        assert route.adapter is not None, route.id
        assert (route.v2_method, route.v2_path) in v2, route.id
