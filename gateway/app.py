"""`create_app(settings)`: the root ASGI app that mounts both stacks over one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

import legacy_flask
import v2_fastapi
from gateway.body_limit import BodyLimits
from gateway.legacy_mount import LegacyMount
from gateway.security_headers import SecurityHeaders, page_policy
from shop_core.database import create_async_db_engine
from shop_core.settings import Settings

LEGACY_PREFIX = "/legacy"
V2_PREFIX = "/v2"
HEALTH_TIMEOUT_S = 2.0
# Where FastAPI's documentation pages load Swagger UI and ReDoc from.
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_FAVICON_HOST = "https://fastapi.tiangolo.com"


class _Gateway(FastAPI):
    page_policies: dict[str, str]

    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware, so that its 500s get the headers too.
        return SecurityHeaders(
            super().build_middleware_stack(),
            legacy_prefix=LEGACY_PREFIX,
            page_policies=self.page_policies,
        )


def _docs_policies(swagger: bytes, redoc: bytes, redirect: bytes) -> dict[str, str]:
    """What each documentation page loads, and nothing more (see `page_policy`).

    Styles may be inline: Swagger UI sets style attributes and ReDoc writes <style>
    elements as it renders, and a style cannot run code. Scripts may not: FastAPI's
    inline ones are allowed by hash.
    """
    # FastAPI's favicon; Swagger UI's icons are data: URLs in its CSS.
    images = ["data:", DOCS_FAVICON_HOST]
    return {
        "/docs": page_policy(
            swagger,
            script_src=[DOCS_CDN],
            style_src=[DOCS_CDN, "'unsafe-inline'"],
            img_src=images,
            # The OpenAPI document, and the calls "Try it out" makes.
            connect_src=["'self'"],
        ),
        "/redoc": page_policy(
            redoc,
            script_src=[DOCS_CDN],
            style_src=["'unsafe-inline'", "https://fonts.googleapis.com"],
            # ReDoc's own logo comes from its maker's CDN.
            img_src=[*images, "https://cdn.redoc.ly"],
            font_src=["https://fonts.gstatic.com"],
            connect_src=["'self'"],
            # ReDoc runs its search index in a worker it builds from a blob.
            worker_src=["blob:"],
        ),
        "/docs/oauth2-redirect": page_policy(redirect),
    }


def create_app(settings: Settings) -> FastAPI:
    flask_app = legacy_flask.create_app(settings.legacy_config())
    legacy = LegacyMount(
        flask_app,
        workers=settings.legacy_workers,
        queue_timeout_s=settings.legacy_queue_timeout_s,
    )
    v2 = v2_fastapi.create_app(settings, mount_path=V2_PREFIX)
    # The health check has a connection of its own, so a busy stack cannot starve it.
    health_engine = create_async_db_engine(settings.database_url, pool_size=1)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Mounted apps get no lifespan events: the gateway runs v2's and closes legacy's.
        async with v2.router.lifespan_context(v2):
            try:
                yield
            finally:
                await asyncio.to_thread(legacy.shutdown)
                legacy_flask.dispose_engine(flask_app)
                await health_engine.dispose()

    app = _Gateway(
        title="Flask to FastAPI migration gateway",
        lifespan=lifespan,
        debug=settings.debug,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    v2_fastapi.install_problem_handlers(app)
    # The documentation pages never change: built once, and their policies from them.
    swagger_page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{v2.title} - Swagger UI",
        oauth2_redirect_url="/docs/oauth2-redirect",
    )
    redirect_page = get_swagger_ui_oauth2_redirect_html()
    redoc_page = get_redoc_html(openapi_url="/openapi.json", title=f"{v2.title} - ReDoc")
    app.page_policies = _docs_policies(
        bytes(swagger_page.body), bytes(redoc_page.body), bytes(redirect_page.body)
    )
    app.mount(LEGACY_PREFIX, legacy)
    app.mount(V2_PREFIX, v2)

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S), health_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError):
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable"}, status_code=503
            )
        return JSONResponse(
            {"status": "ok", "database": "ok", "stacks": {"legacy": LEGACY_PREFIX, "v2": V2_PREFIX}}
        )

    # The gateway's documentation is the v2 API's: that is what new clients integrate with.
    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(v2.openapi())

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger_page.body)

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return HTMLResponse(redirect_page.body)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return HTMLResponse(redoc_page.body)

    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        legacy_prefix=LEGACY_PREFIX,
    )
    if settings.cors_origins:
        # Outside the body limit, so that a browser can read the 413 too. No credentials:
        # tokens travel in the Authorization header, never in cookies.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            # ETag out, If-Match in: browser clients can make their changes conditional too.
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match"],
            expose_headers=["Location", "ETag"],
            max_age=600,
        )
    return app
