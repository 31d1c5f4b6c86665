"""The shop's settings and the gateway's, read together from the `GATEWAY_*` variables."""

from __future__ import annotations

from gateway.settings import GatewaySettings
from shop_core.settings import Settings


class ShopSettings(Settings, GatewaySettings):
    # What `gateway serve` does before it serves the shop: apply the migrations, and load
    # the demo data into an empty database (None: in development only; refused elsewhere).
    migrate_on_start: bool = True
    seed_on_start: bool | None = None
