"""The migration gateway: one ASGI process serving the legacy Flask app and the v2 FastAPI app.

Kept free of imports so that `python -m gateway` and `gateway.settings` load nothing else.
"""
