"""A second app pair that is not the shop: a tiny notes API, Flask and FastAPI.

It stands for another team's apps behind the gateway: its own routes, its own error
formats (`{"fault": ...}` on the legacy side, `application/vnd.notes.error+json` on v2),
its own readiness check, and no database the gateway knows of. The end-to-end test of
the gateway with this pair is `tests/gateway/test_any_pair.py`.
"""
