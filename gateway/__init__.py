"""The migration gateway: one ASGI process serving the legacy Flask app and the v2 FastAPI app.

Kept free of imports: `gateway.legacy_wsgi` (gunicorn) must not build the whole gateway.
"""
