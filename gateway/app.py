"""`create_app(settings)`: the root ASGI app that mounts both stacks over one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

import legacy_flask
import v2_fastapi
from gateway.body_limit import BodyLimits
from gateway.docs import install_docs
from gateway.legacy_mount import LegacyMount
from gateway.security_headers import SecurityHeaders
from shop_core.database import create_async_db_engine
from shop_core.settings import Settings

LEGACY_PREFIX = "/legacy"
V2_PREFIX = "/v2"
HEALTH_TIMEOUT_S = 2.0


class _Gateway(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware, so that its 500s get the headers too.
        return SecurityHeaders(super().build_middleware_stack(), legacy_prefix=LEGACY_PREFIX)


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

    install_docs(app, openapi_url="/openapi.json", title=v2.title)

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
