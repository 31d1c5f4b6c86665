"""The module uvicorn imports: the only place that holds a global app (`gateway.main:app`)."""

from gateway.app import create_app
from shop_core.settings import Settings

app = create_app(Settings())
