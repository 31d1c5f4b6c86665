"""`ShopPair`: how `gateway serve` serves the shop (the default `GATEWAY_PAIR`).

Before serving, once, in the serving process: the migrations, the demo data (development
only), a random token key when none is set, and the carrier stand-in when no carrier is
configured; worker processes learn the key and the carrier's URL through the environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.background_server import BackgroundServer
from gateway.pair import AppPair
from gateway.settings import GatewaySettings
from shop.app import build_pair
from shop.carrier_stub import create_carrier_app
from shop.demo import refuse_seeding_outside_development, seed
from shop.settings import ShopSettings
from shop_core.migrate import upgrade
from shop_core.settings import Environment

log = logging.getLogger("shop")


class ShopPair:
    def __init__(self, gateway_settings: GatewaySettings) -> None:
        self.gateway_settings = gateway_settings

    @contextmanager
    def prepare(self) -> Iterator[None]:
        settings = ShopSettings()
        development = settings.env is Environment.DEVELOPMENT
        seeding = development if settings.seed_on_start is None else settings.seed_on_start
        if seeding:
            # Before anything changes: a refused start leaves the database as it was.
            refuse_seeding_outside_development(settings)
        if settings.migrate_on_start:
            upgrade(settings.database_url)
        if seeding:
            seed(settings)
        if "secret_key" not in settings.model_fields_set:
            log.info("no GATEWAY_SECRET_KEY: tokens are signed with a random key of this server's")
            # Worker processes read their settings afresh: this is how they share the key
            # (each would draw a key of its own, and refuse the other workers' tokens).
            os.environ["GATEWAY_SECRET_KEY"] = settings.secret_key.get_secret_value()
        if settings.carrier_url is not None:
            yield
            return
        with BackgroundServer(create_carrier_app()) as stub:
            log.info("no GATEWAY_CARRIER_URL: carrier stub started on %s", stub.url)
            os.environ["GATEWAY_CARRIER_URL"] = stub.url
            yield

    def build(self) -> AppPair:
        # Read now: `prepare` may have set the key and the carrier's URL.
        return build_pair(ShopSettings())
