"""The module uvicorn imports for worker processes (`gateway.main:app`).

Each worker reads the settings afresh and builds its own pair and app; `gateway serve`
with one worker builds the app itself instead.
"""

from gateway.app import create_gateway
from gateway.pair import pair_source
from gateway.serving import configure_logging, settle_heap
from gateway.settings import GatewaySettings

settings = GatewaySettings()
configure_logging(settings)
app = create_gateway(settings, pair_source(settings).build())
settle_heap()
