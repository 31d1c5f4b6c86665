"""HTTP hygiene on every answer of the gateway: headers, CORS, TRACE, and no debug output."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import flask
import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from flask import Flask

import legacy_flask
import v2_fastapi
from gateway.background_server import BackgroundServer
from shop.app import create_app
from shop.settings import ShopSettings
from tests.conftest import make_settings
from tests.support import Stack, assert_error

ALLOWED_ORIGIN = "https://shop.example"
OTHER_ORIGIN = "https://elsewhere.example"
# A value that must never come back in an answer.
PROBE = "probe-7f3a9c-do-not-echo"


API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def _stack_of(path: str, base_url: str) -> Stack:
    """The stack whose error dialect a path answers in (the gateway's own use v2's)."""
    return Stack("legacy" if path.startswith("/legacy") else "v2", base_url, {})


def _assert_hygienic(answer: requests.Response | http.client.HTTPResponse) -> None:
    headers = {name.lower(): value for name, value in answer.headers.items()}
    assert headers.get("x-content-type-options") == "nosniff", headers
    assert headers.get("x-frame-options") == "DENY", headers
    # Pages have a policy of their own (tests/gateway/test_hardening.py); data loads nothing.
    assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), headers
    if not headers.get("content-type", "").startswith("text/html"):
        assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'", (
            headers
        )
    assert "server" not in headers, headers
    assert "x-powered-by" not in headers, headers


# Every kind of answer: success, HTML docs, each stack's errors, and the gateway's own.
ANSWERS = [
    ("GET", "/health", {}, 200),
    ("GET", "/docs", {}, 200),
    ("GET", "/redoc", {}, 200),
    ("GET", "/openapi.json", {}, 200),
    ("GET", "/nowhere", {}, 404),
    ("GET", "/legacy/health", {}, 200),
    ("GET", "/legacy/products", {}, 200),
    ("HEAD", "/legacy/products", {}, 200),
    ("GET", "/legacy/products/999999999", {}, 404),
    ("GET", "/legacy/nowhere", {}, 404),
    ("GET", "/legacy/customers", {}, 401),
    ("DELETE", "/legacy/health", {}, 405),
    ("POST", "/legacy/auth/token", {"data": "{not json"}, 400),
    ("OPTIONS", "/legacy/products", {}, 200),
    ("GET", "/v2/health", {}, 200),
    ("GET", "/v2/products", {}, 200),
    ("GET", "/v2/products/999999999", {}, 404),
    ("GET", "/v2/nowhere", {}, 404),
    ("GET", "/v2/customers", {}, 401),
    ("DELETE", "/v2/health", {}, 405),
    ("POST", "/v2/auth/token", {"data": {"username": "x"}}, 422),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    ANSWERS,
    ids=[f"{m} {p} {s}" for m, p, _, s in ANSWERS],
)
def test_every_answer_says_nosniff_denies_framing_and_names_no_server(
    gateway: BackgroundServer, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    answer = requests.request(method, gateway.url + path, timeout=10, **kwargs)
    assert answer.status_code == status, answer.text
    _assert_hygienic(answer)


@pytest.mark.parametrize("prefix", ["/legacy", "/v2"])
def test_a_body_over_the_limit_gets_413_with_the_same_headers(
    gateway: BackgroundServer, prefix: str
) -> None:
    # Declared, never sent: the limit refuses it on the Content-Length alone.
    conn = http.client.HTTPConnection(gateway.host, gateway.port, timeout=10)
    try:
        conn.putrequest("POST", f"{prefix}/customers")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(100 * 1024 * 1024))
        conn.endheaders()
        answer = conn.getresponse()
        answer.read()
    finally:
        conn.close()
    assert answer.status == 413
    _assert_hygienic(answer)


# Each path, and the methods its 405 must name in Allow (none where there is no resource).
TRACE_PATHS = {
    "/": {"GET"},  # the landing page
    "/health": {"GET"},
    "/docs": {"GET"},
    "/openapi.json": {"GET"},
    "/nowhere": set(),
    "/legacy": set(),
    "/legacy/health": {"GET"},
    "/legacy/products": {"GET", "POST"},
    "/legacy/orders/1/cancel": {"POST"},
    "/legacy/nowhere": set(),
    "/v2": set(),
    "/v2/health": {"GET"},
    "/v2/products": {"GET", "POST"},
    "/v2/orders/1/cancel": {"POST"},
    "/v2/nowhere": set(),
}


@pytest.mark.parametrize("path", list(TRACE_PATHS))
def test_trace_is_refused_everywhere_and_echoes_nothing(
    gateway: BackgroundServer, path: str
) -> None:
    answer = requests.request(
        "TRACE",
        gateway.url + path,
        headers={
            "Authorization": f"Bearer {PROBE}",
            "Cookie": f"session={PROBE}",
            "X-Probe": PROBE,
        },
        data=PROBE,
        timeout=10,
    )
    assert_error(_stack_of(path, gateway.url), answer, 405)
    assert PROBE not in answer.text
    assert PROBE not in str(answer.headers)
    allowed = {method.strip() for method in answer.headers["Allow"].split(",") if method.strip()}
    assert "TRACE" not in allowed
    if TRACE_PATHS[path]:
        assert TRACE_PATHS[path] <= allowed
    else:
        assert allowed == set()
    _assert_hygienic(answer)


def _preflight(url: str, origin: str) -> requests.Response:
    return requests.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=10,
    )


def _cors_headers(answer: requests.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in answer.headers.items() if k.lower().startswith("access-")}


CORS_PATHS = ["/legacy/products", "/v2/products", "/health"]


@pytest.mark.parametrize("path", CORS_PATHS)
def test_cors_is_off_by_default(gateway: BackgroundServer, path: str) -> None:
    simple = requests.get(gateway.url + path, headers={"Origin": ALLOWED_ORIGIN}, timeout=10)
    assert simple.status_code == 200
    assert _cors_headers(simple) == {}
    assert _cors_headers(_preflight(gateway.url + path, ALLOWED_ORIGIN)) == {}


@pytest.fixture(scope="module")
def cors_gateway(database_url: str) -> Iterator[BackgroundServer]:
    """A gateway configured the way an operator would: through GATEWAY_CORS_ORIGINS."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATEWAY_CORS_ORIGINS", json.dumps([ALLOWED_ORIGIN]))
        settings = make_settings(database_url)
    assert settings.cors_origins == [ALLOWED_ORIGIN]
    with BackgroundServer(create_app(settings)) as server:
        yield server


@pytest.mark.parametrize("path", CORS_PATHS)
def test_cors_answers_the_configured_origins_only(
    cors_gateway: BackgroundServer, path: str
) -> None:
    url = cors_gateway.url + path
    preflight = _preflight(url, ALLOWED_ORIGIN)
    assert preflight.status_code == 200
    allowed = _cors_headers(preflight)
    assert allowed["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in allowed["access-control-allow-methods"]
    assert {"authorization", "content-type"} <= {
        h.strip().lower() for h in allowed["access-control-allow-headers"].split(",")
    }
    assert "access-control-allow-credentials" not in allowed
    _assert_hygienic(preflight)

    simple = requests.get(url, headers={"Origin": ALLOWED_ORIGIN}, timeout=10)
    assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "location" in simple.headers["access-control-expose-headers"].lower()

    assert "access-control-allow-origin" not in _cors_headers(_preflight(url, OTHER_ORIGIN))
    other = requests.get(url, headers={"Origin": OTHER_ORIGIN}, timeout=10)
    assert other.status_code == 200
    assert "access-control-allow-origin" not in _cors_headers(other)


@pytest.mark.parametrize("stack", ["legacy", "v2"])
def test_cors_lets_browsers_send_if_match_and_read_etag(
    cors_gateway: BackgroundServer, stack: str
) -> None:
    url = f"{cors_gateway.url}/{stack}/products/1"
    preflight = requests.options(
        url,
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
        timeout=10,
    )
    assert preflight.status_code == 200, preflight.text
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"if-match", "if-none-match"} <= {h.strip() for h in allowed.split(",")}

    simple = requests.get(url, headers={"Origin": ALLOWED_ORIGIN}, timeout=10)
    assert simple.headers["ETag"]
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert "etag" in {h.strip() for h in exposed.split(",")}


def test_debug_is_refused_outside_development() -> None:
    for env in ("production", "test"):
        with pytest.raises(ValueError, match="GATEWAY_DEBUG"):
            ShopSettings(env=env, secret_key="s" * 40, debug=True)
    assert ShopSettings(env="development", debug=True).debug


@dataclass
class _Built:
    """A gateway built by the real factories, with the stacks' apps it was built from."""

    gateway: FastAPI
    flask: Flask
    v2: FastAPI


def _fail() -> None:
    raise RuntimeError(f"internal detail {PROBE}")


async def _fail_async() -> None:
    _fail()


def _echo() -> str:
    """What a TRACE handler does: answer with the request it got."""
    return f"{flask.request.headers}\n{flask.request.get_data(as_text=True)}"


async def _echo_async(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.headers}\n{(await request.body()).decode()}")


def _build_with_test_routes(database_url: str, **overrides: Any) -> _Built:
    """The gateway for these settings; each of its three apps gets `GET /fail` (which
    raises) and `TRACE /echo` (which echoes the request)."""
    make_flask, make_v2 = legacy_flask.create_app, v2_fastapi.create_app
    built: dict[str, Any] = {}

    def flask_factory(*args: Any, **kwargs: Any) -> Flask:
        app = built["flask"] = make_flask(*args, **kwargs)
        app.add_url_rule("/fail", "fail", _fail)
        app.add_url_rule("/echo", "echo", _echo, methods=["TRACE"])
        return app

    def v2_factory(*args: Any, **kwargs: Any) -> FastAPI:
        app = built["v2"] = make_v2(*args, **kwargs)
        app.add_api_route("/fail", _fail_async)
        app.add_api_route("/echo", _echo_async, methods=["TRACE"])
        return app

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(legacy_flask, "create_app", flask_factory)
        patch.setattr(v2_fastapi, "create_app", v2_factory)
        gateway = create_app(make_settings(database_url, **overrides))
    gateway.add_api_route("/fail", _fail_async)
    gateway.add_api_route("/echo", _echo_async, methods=["TRACE"])
    return _Built(gateway, built["flask"], built["v2"])


@pytest.mark.parametrize("env", ["production", "test", "development"])
def test_debug_is_off_unless_the_settings_turn_it_on(database_url: str, env: str) -> None:
    built = _build_with_test_routes(database_url, env=env)
    assert (built.gateway.debug, built.v2.debug, built.flask.debug) == (False, False, False)
    legacy_flask.dispose_engine(built.flask)


def test_debug_in_development_reaches_both_apps(database_url: str) -> None:
    built = _build_with_test_routes(database_url, env="development", debug=True)
    # The gateway's own routes have no traceback worth showing: it never runs in debug.
    assert (built.gateway.debug, built.v2.debug, built.flask.debug) == (False, True, True)
    legacy_flask.dispose_engine(built.flask)


@pytest.fixture(scope="module")
def production_gateway(database_url: str) -> Iterator[BackgroundServer]:
    with BackgroundServer(
        _build_with_test_routes(database_url, env="production").gateway
    ) as server:
        yield server


@pytest.mark.parametrize("path", ["/fail", "/legacy/fail", "/v2/fail"])
def test_a_production_app_answers_an_internal_error_without_a_traceback(
    production_gateway: BackgroundServer, path: str
) -> None:
    answer = requests.get(production_gateway.url + path, timeout=10)
    assert_error(_stack_of(path, production_gateway.url), answer, 500)
    for leak in ("Traceback", "RuntimeError", PROBE, ".py"):
        assert leak not in answer.text
    _assert_hygienic(answer)


@pytest.mark.parametrize("path", ["/echo", "/legacy/echo", "/v2/echo"])
def test_trace_is_refused_even_where_an_app_would_answer_it(
    production_gateway: BackgroundServer, path: str
) -> None:
    answer = requests.request(
        "TRACE",
        production_gateway.url + path,
        headers={"Authorization": f"Bearer {PROBE}"},
        data=PROBE,
        timeout=10,
    )
    assert_error(_stack_of(path, production_gateway.url), answer, 405)
    assert PROBE not in answer.text
    assert answer.headers["Allow"] == ""
    _assert_hygienic(answer)
