"""The shop's pair of apps, and the gateway that serves them (`create_app(settings)`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

import legacy_flask
import v2_fastapi
from gateway.app import create_gateway
from gateway.pair import AppPair
from shop.errors import legacy_error
from shop.ledger import shop_ledger
from shop.settings import ShopSettings
from shop_core.database import create_async_db_engine


def build_pair(settings: ShopSettings) -> AppPair:
    """Both stacks over one database, with the legacy error format and a database check."""
    flask_app = legacy_flask.create_app(
        settings.legacy_config(
            threads=settings.legacy_workers, max_body_bytes=settings.max_body_bytes
        )
    )
    v2 = v2_fastapi.create_app(settings, mount_path=settings.v2_prefix)
    # The health check has a connection of its own, so a busy stack cannot starve it.
    health_engine = create_async_db_engine(settings.database_url, pool_size=1)

    async def database() -> bool:
        async with health_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await asyncio.to_thread(legacy_flask.dispose_engine, flask_app)
            await health_engine.dispose()

    return AppPair(
        legacy=flask_app,
        v2=v2,
        legacy_errors=legacy_error,
        checks={"database": database},
        lifespan=lifespan,
        ledger=shop_ledger(),
        # The route statuses live beside the shop's rows unless the team names another place.
        control_database_url=settings.database_url,
        # v2's calls to the carrier (v2_fastapi/metrics.py).
        metrics=[v2.state.upstream_metrics.registry],
    )


def create_app(settings: ShopSettings) -> FastAPI:
    return create_gateway(settings, build_pair(settings))
