"""The HTTP surface of v2: one router per resource, gathered in `api.main`."""
