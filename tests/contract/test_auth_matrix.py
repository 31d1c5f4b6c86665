"""Every route of every app in the gateway, against every kind of bad token.

The routes come from the apps' own route tables (Flask's `url_map`, the FastAPI apps'
`routes`), not from a list kept here: a route that `ROUTES` does not classify fails the
test, so a route added later cannot go unchecked. For each route:

- no token, a malformed one, a forged signature, an expired one, `alg: none`, another
  issuer → 401 with `WWW-Authenticate: Bearer`, in the stack's error dialect;
- a valid token with every scope but the one the route needs → 403;
- a valid token of the least privileged demo user that has the scope → neither;
- public routes answer the same whatever token comes with them.

Path parameters are real ids, so that 404 cannot answer before authorisation does.
The legacy door is checked twice: served by Flask, and with every paired route served by
v2 through its adapter (each route is checked on its own, so the mixed combinations of
states add nothing here).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import pytest
import requests
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from flask import Flask
from sqlalchemy import Engine, select
from starlette.routing import BaseRoute, Mount

import legacy_flask
from gateway.background_server import BackgroundServer
from gateway.dashboard.pages import ASSETS_URL as DASHBOARD_ASSETS_URL
from gateway.docs import ASSETS_URL
from gateway.ledger.dispatch import LedgerDispatch
from gateway.legacy_mount import LegacyMount
from shop.settings import ShopSettings
from shop_core.models import User
from tests.contract.combinations import LEGACY_ON_V2, GatewayIn
from tests.support import DEMO_PASSWORD, Stack, assert_error

PUBLIC = "public"
SCOPES = ("read", "write", "admin")
# The least privileged demo user that holds each scope (the session's tokens).
HOLDER = {"read": "viewer", "write": "clerk", "admin": "admin"}

# API.md's endpoint table: "METHOD /path" (path parameters as {id}) → the scope it needs.
# HEAD, where a framework answers it, needs what GET needs.
ROUTES: dict[str, str] = {
    "POST /auth/token": PUBLIC,
    "GET /health": PUBLIC,
    "GET /products": PUBLIC,
    "GET /products/{id}": PUBLIC,
    "POST /products": "admin",
    "PUT /products/{id}": "admin",
    "DELETE /products/{id}": "admin",
    "GET /customers": "read",
    "GET /customers/{id}": "read",
    "POST /customers": "write",
    "PUT /customers/{id}": "write",
    "DELETE /customers/{id}": "write",
    "GET /orders": "read",
    "GET /orders/{id}": "read",
    "POST /orders": "write",
    "POST /orders/{id}/cancel": "write",
    "GET /shipping/quote": "read",
}
V2_ONLY: dict[str, str] = {
    "PATCH /products/{id}": "admin",
    "PATCH /customers/{id}": "write",
    # FastAPI's own description of the v2 app, under /v2 as well.
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/oauth2-redirect": PUBLIC,
    "GET /redoc": PUBLIC,
}
GATEWAY_ROUTES: dict[str, str] = {
    # The landing page: links only.
    "GET /": PUBLIC,
    "GET /health": PUBLIC,
    # Counts by route template, never a path or a token: public, as Prometheus scrapes it
    # (GATEWAY_METRICS_PORT puts it on a port of its own, for a private network).
    "GET /metrics": PUBLIC,
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/oauth2-redirect": PUBLIC,
    "GET /redoc": PUBLIC,
}
# The two stacks, and the docs' and the dashboard's static files (public, as the pages that
# load them; the dashboard's figures come from its admin API).
GATEWAY_MOUNTS = {"/legacy", "/v2", ASSETS_URL, DASHBOARD_ASSETS_URL}


def _table(name: str) -> dict[str, str]:
    return {"legacy": ROUTES, "v2": ROUTES | V2_ONLY, "gateway": GATEWAY_ROUTES}[name]


def _scope_of(table: dict[str, str], key: str) -> str | None:
    method, path = key.split(" ", 1)
    return table.get(f"GET {path}" if method == "HEAD" else key)


# Route tables, read from the apps themselves.


def _normalise(path: str) -> str:
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{id}", path)


def _flask_routes(app: Flask) -> set[str]:
    keys = set()
    for rule in app.url_map.iter_rules():
        methods = set(rule.methods or ())
        # Flask answers these OPTIONS itself, without running a view.
        if getattr(rule, "provide_automatic_options", False):
            methods.discard("OPTIONS")
        keys |= {f"{method} {_normalise(rule.rule)}" for method in methods}
    return keys


def _starlette_routes(routes: list[BaseRoute]) -> tuple[set[str], dict[str, Any]]:
    """The routes by "METHOD /path", and the mounted apps by path.

    FastAPI keeps included routers as entries of their own; `iter_route_contexts` gives
    the routes as the app matches them, with the routers' prefixes applied.
    """
    keys: set[str] = set()
    mounts: dict[str, Any] = {}
    for context in iter_route_contexts(routes):
        if isinstance(context.route, Mount):
            mounts[context.route.path] = context.route.app
        elif context.methods and context.path:
            keys |= {f"{method} {_normalise(context.path)}" for method in context.methods}
        else:
            keys.add(f"{type(context.route).__name__} {context.path}")
    return keys, mounts


@pytest.fixture(scope="module")
def route_tables(gateway: BackgroundServer, settings: ShopSettings) -> dict[str, set[str]]:
    """The routes of the gateway being served, and of the two apps it mounts."""
    root = gateway.server.config.app
    assert isinstance(root, FastAPI)
    gateway_keys, mounts = _starlette_routes(root.routes)
    assert set(mounts) == GATEWAY_MOUNTS, f"unclassified mounts: {set(mounts) - GATEWAY_MOUNTS}"
    # The route ledger's dispatch, in front of the Flask app's mount.
    assert isinstance(mounts["/legacy"], LedgerDispatch)
    assert isinstance(mounts["/legacy"].legacy, LegacyMount)
    v2 = mounts["/v2"]
    assert isinstance(v2, FastAPI)
    v2_keys, v2_mounts = _starlette_routes(v2.routes)
    assert not v2_mounts, f"unclassified mounts under /v2: {set(v2_mounts)}"
    # The mount wraps the Flask app; its factory, with the gateway's config, builds the same.
    flask_app = legacy_flask.create_app(
        settings.legacy_config(
            threads=settings.legacy_workers, max_body_bytes=settings.max_body_bytes
        )
    )
    legacy_keys = _flask_routes(flask_app)
    legacy_flask.dispose_engine(flask_app)
    return {"gateway": gateway_keys, "legacy": legacy_keys, "v2": v2_keys}


@pytest.mark.parametrize("name", ["gateway", "legacy", "v2"])
def test_every_route_is_in_the_table_and_every_entry_is_a_route(
    route_tables: dict[str, set[str]], name: str
) -> None:
    table = _table(name)
    served = route_tables[name]
    unclassified = sorted(key for key in served if _scope_of(table, key) is None)
    assert not unclassified, f"{name}: routes the auth table does not classify: {unclassified}"
    gone = sorted(key for key in table if key not in served)
    assert not gone, f"{name}: table entries that are no route: {gone}"


# Tokens: minted once.


@pytest.fixture(scope="module")
def bad_tokens(settings: ShopSettings) -> dict[str, str]:
    """Tokens that must be refused (401), each claiming every scope."""
    now = int(time.time())
    claims = {
        "sub": "admin",
        "scope": " ".join(SCOPES),
        "iat": now,
        "exp": now + 3600,
        "iss": settings.token_issuer,
    }
    secret = settings.secret_key.get_secret_value()
    return {
        "malformed": "not-a-jwt",
        "wrong signature": jwt.encode(claims, "another-secret-" + "y" * 32, algorithm="HS256"),
        "expired": jwt.encode(
            claims | {"iat": now - 7200, "exp": now - 3600}, secret, algorithm="HS256"
        ),
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "wrong issuer": jwt.encode(claims | {"iss": "someone-else"}, secret, algorithm="HS256"),
    }


@pytest.fixture(scope="module")
def scope_lacking_tokens(settings: ShopSettings) -> dict[str, str]:
    """For each scope, a valid token with every other scope (so only that one is missing)."""
    now = int(time.time())
    return {
        scope: jwt.encode(
            {
                "sub": "admin",
                "scope": " ".join(s for s in SCOPES if s != scope),
                "iat": now,
                "exp": now + 3600,
                "iss": settings.token_issuer,
            },
            settings.secret_key.get_secret_value(),
            algorithm="HS256",
        )
        for scope in SCOPES
    }


def _bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def _ids(stack: Stack, unique: str) -> dict[str, int]:
    """Real rows for every path parameter, made through the stack under test."""
    product = stack.create_product(unique)
    customer = stack.create_customer(unique)
    order = stack.place_order(customer["id"], (product["id"], 1))
    assert order.status_code == 201, order.text
    return {"products": product["id"], "customers": customer["id"], "orders": order.json()["id"]}


def _fill(path: str, ids: dict[str, int]) -> str:
    if "{id}" not in path:
        return path
    resource = path.split("/")[1]
    assert resource in ids, f"no row to put in {path}: make one in _ids()"
    return path.replace("{id}", str(ids[resource]))


def _refused(answer: requests.Response, dialect: Stack | None, status: int) -> str | None:
    """What is wrong with `answer` as a refusal with `status`, or None."""
    if answer.status_code != status:
        return f"{answer.status_code} instead of {status}: {answer.text[:200]}"
    if status == 401 and not answer.headers.get("WWW-Authenticate", "").startswith("Bearer"):
        return f"401 without WWW-Authenticate: Bearer ({answer.headers})"
    if dialect is not None and answer.request.method != "HEAD":
        try:
            assert_error(dialect, answer, status)
        except AssertionError as exc:
            return f"not in the {dialect.name} error dialect: {exc}"
    return None


def _run_matrix(
    http: requests.Session,
    base_url: str,
    keys: set[str],
    table: dict[str, str],
    dialect: Stack | None,
    ids: dict[str, int],
    tokens: dict[str, str],
    bad_tokens: dict[str, str],
    scope_lacking_tokens: dict[str, str],
) -> list[str]:
    failures: list[str] = []
    refused_cases = {"no token": None} | bad_tokens

    def call(key: str, token: str | None) -> requests.Response:
        method, path = key.split(" ", 1)
        body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        return http.request(
            method, base_url + _fill(path, ids), headers=_bearer(token), timeout=15, **body
        )

    # Refusals first, positives last: a positive DELETE may remove the row under test.
    ordered = sorted(keys)
    for key in ordered:
        scope = _scope_of(table, key)
        assert scope is not None
        if scope == PUBLIC:
            anything = refused_cases | {"no scopes": scope_lacking_tokens["read"]}
            for case, token in anything.items():
                answer = call(key, token)
                # A public read succeeds; the one public write, the login, is sent `{}`: it
                # must answer that the body is invalid, never that the token is.
                expected = {200} if key.startswith(("GET ", "HEAD ")) else {400, 422}
                if answer.status_code not in expected:
                    failures.append(f"{key} is public, but with {case}: {answer.status_code}")
            continue
        for case, token in refused_cases.items():
            problem = _refused(call(key, token), dialect, 401)
            if problem:
                failures.append(f"{key} with {case}: {problem}")
        problem = _refused(call(key, scope_lacking_tokens[scope]), dialect, 403)
        if problem:
            failures.append(f"{key} without the {scope!r} scope: {problem}")
    for key in ordered:
        scope = _scope_of(table, key)
        if scope != PUBLIC:
            answer = call(key, tokens[HOLDER[str(scope)]])
            if answer.status_code in (401, 403) or answer.status_code >= 500:
                failures.append(f"{key} refused {HOLDER[str(scope)]}: {answer.status_code}")
    return failures


@pytest.mark.parametrize("name", ["legacy", "v2", LEGACY_ON_V2])
def test_each_stack_refuses_bad_tokens_and_missing_scopes_on_every_route(
    gateway: BackgroundServer,
    gateway_in: GatewayIn,
    route_tables: dict[str, set[str]],
    tokens: dict[str, str],
    bad_tokens: dict[str, str],
    scope_lacking_tokens: dict[str, str],
    unique: str,
    name: str,
) -> None:
    if name == LEGACY_ON_V2:
        stack = Stack("legacy", gateway_in(LEGACY_ON_V2).url, tokens)
    else:
        stack = Stack(name, gateway.url, tokens)
    failures = _run_matrix(
        stack.http,
        stack.url,
        route_tables[stack.name],
        _table(stack.name),
        stack,
        _ids(stack, unique),
        tokens,
        bad_tokens,
        scope_lacking_tokens,
    )
    assert not failures, "\n".join(failures)


def test_the_gateways_own_routes_stay_public(
    gateway: BackgroundServer,
    route_tables: dict[str, set[str]],
    tokens: dict[str, str],
    bad_tokens: dict[str, str],
    scope_lacking_tokens: dict[str, str],
) -> None:
    with requests.Session() as http:
        failures = _run_matrix(
            http,
            gateway.url,
            route_tables["gateway"],
            GATEWAY_ROUTES,
            None,
            {},
            tokens,
            bad_tokens,
            scope_lacking_tokens,
        )
    assert not failures, "\n".join(failures)


# Secrets at rest and in logs.


def test_passwords_are_stored_as_salted_argon2_hashes(db: Engine) -> None:
    with db.connect() as conn:
        hashes = conn.scalars(select(User.password_hash)).all()
    assert len(hashes) >= 3
    for stored in hashes:
        assert stored.startswith("$argon2id$"), stored[:12]
        memory_kib = int(re.search(r"\$m=(\d+),", stored).group(1))  # type: ignore[union-attr]
        # OWASP's minimum for argon2id: 19 MiB.
        assert memory_kib >= 19 * 1024
    # The demo users share a password: only a salt makes their hashes differ.
    assert len(set(hashes)) == len(hashes)


@contextmanager
def _every_logger_at_debug(handler: logging.Handler) -> Iterator[None]:
    """Send every logger's records, at DEBUG, to `handler` (also those that do not propagate)."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    levels = [(logger, logger.level) for logger in loggers]
    detached = [logger for logger in loggers if not logger.propagate]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    for logger in detached:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in detached:
            logger.removeHandler(handler)
        for logger, level in levels:
            logger.setLevel(level)


def test_tokens_never_reach_the_logs(
    gateway: BackgroundServer,
    tokens: dict[str, str],
    bad_tokens: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    used = list(tokens.values()) + list(bad_tokens.values())
    with caplog.at_level(logging.DEBUG), _every_logger_at_debug(caplog.handler):
        for name in ("legacy", "v2"):
            stack = Stack(name, gateway.url, tokens)
            login = stack.login("clerk", DEMO_PASSWORD)
            assert login.status_code == 200, login.text
            used.append(login.json()["access_token"])
            fresh = {"Authorization": f"Bearer {used[-1]}"}
            assert stack.get("/customers", headers=fresh).status_code == 200
            assert stack.post("/customers", json={}, user="viewer").status_code == 403
            assert stack.post("/customers", json={}, user="clerk").status_code in (400, 422)
            for token in bad_tokens.values():
                assert stack.get("/customers", headers=_bearer(token)).status_code == 401
    records = caplog.records
    # The capture works: the server's access log (which does not propagate) is in it.
    assert any("/customers" in record.getMessage() for record in records)
    secrets = used + [token.rsplit(".", 1)[-1] for token in used if token.count(".") == 2]
    for record in records:
        text = caplog.handler.format(record) + repr(record.__dict__)
        assert "Bearer " not in text, f"{record.name}: {text[:300]}"
        leaked = [secret for secret in secrets if secret and secret in text]
        assert not leaked, f"{record.name} logged a token: {text[:300]}"
