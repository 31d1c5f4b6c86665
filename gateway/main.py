"""The module uvicorn imports for worker processes (`gateway.main:app`).

Each worker reads the settings afresh and builds its own app; `gateway serve` with one
worker builds the app itself instead.
"""

from gateway.app import create_app
from gateway.serving import configure_logging
from shop_core.settings import Settings

settings = Settings()
configure_logging(settings)
app = create_app(settings)
