"""The migration gateway: one ASGI process serving a team's Flask app and its FastAPI
successor side by side (`create_gateway(settings, pair)`, `gateway serve`).

Kept free of imports, so that importing a part does not build the whole gateway.
"""
