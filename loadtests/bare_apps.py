"""The shop's two apps served alone, for the bench's gateway-tax pairs.

    uvicorn --factory loadtests.bare_apps:v2_alone
    uvicorn --factory loadtests.bare_apps:legacy_alone

The same apps the gateway serves, built from the same settings and in a process set up as
`gateway serve` sets up its own (the collector's settings, `settle_heap`), without the
gateway's layers: what the gateway costs is the difference. The gunicorn baselines are
left as teams run them.
"""

from __future__ import annotations

from typing import cast

from a2wsgi import WSGIMiddleware
from a2wsgi.wsgi_typing import WSGIApp
from fastapi import FastAPI

import legacy_flask
import v2_fastapi
from gateway.serving import settle_heap
from shop.settings import ShopSettings


def v2_alone() -> FastAPI:
    # uvicorn runs the app's lifespan (database engine, carrier client) for an app it
    # serves, as the gateway does for its mount.
    app = v2_fastapi.create_app(ShopSettings())
    settle_heap()
    return app


def legacy_alone() -> WSGIMiddleware:
    settings = ShopSettings()
    flask_app = legacy_flask.create_app(
        settings.legacy_config(
            threads=settings.legacy_workers, max_body_bytes=settings.max_body_bytes
        )
    )
    # A bare a2wsgi mount with as many threads as the gateway's legacy pool.
    # (a2wsgi's WSGI types are narrower than Flask's signature; the app is a WSGI app.)
    app = WSGIMiddleware(cast(WSGIApp, flask_app), workers=settings.legacy_workers)
    settle_heap()
    return app
