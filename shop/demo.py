"""The demo data: users with a public password, so for development only."""

from __future__ import annotations

import logging

from shop_core.database import create_sync_engine
from shop_core.seed import seed_demo_data
from shop_core.settings import Environment, Settings

log = logging.getLogger("shop")


def refuse_seeding_outside_development(settings: Settings) -> None:
    # The demo users' password is public: their accounts must never exist where the
    # gateway serves real clients.
    if settings.env is not Environment.DEVELOPMENT:
        raise SystemExit(
            f"shop: demo data is refused with GATEWAY_ENV={settings.env}: its users have "
            "a public password; seeding is for GATEWAY_ENV=development only"
        )


def seed(settings: Settings) -> None:
    refuse_seeding_outside_development(settings)
    engine = create_sync_engine(settings.database_url, pool_size=1)
    try:
        seeded = seed_demo_data(engine, password=settings.demo_password.get_secret_value())
    finally:
        engine.dispose()
    log.info("demo data %s", "loaded" if seeded else "already present, left alone")
