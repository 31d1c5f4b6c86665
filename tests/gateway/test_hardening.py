"""What the gateway's response middleware guards on both stacks: forged Host headers in
redirects, duplicate Authorization headers, and the framing and content policies of
every answer, the documentation pages' included."""

from __future__ import annotations

import base64
import hashlib
import http.client
import re

import pytest
import requests

from gateway.background_server import BackgroundServer
from gateway.security_headers import API_POLICY
from tests.support import STACKS, Stack, assert_error


def _get(
    server: BackgroundServer, path: str, headers: list[tuple[str, str]]
) -> tuple[int, dict[str, str], bytes]:
    """A GET with exactly these headers, repeated ones included, and no Host of its own."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        answer = conn.getresponse()
        body = answer.read()
    finally:
        conn.close()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, body


def _as_response(status: int, headers: dict[str, str], body: bytes) -> requests.Response:
    """What `_get` got, as the response `assert_error` reads."""
    answer = requests.Response()
    answer.status_code, answer._content = status, body
    answer.headers.update(headers)
    return answer


# Paths whose slash redirect (Starlette's) builds its Location from the Host header.
REDIRECTS = [
    ("/v2/customers/", "/v2/customers"),
    ("/v2/products/?q=desk", "/v2/products?q=desk"),
    ("/health/", "/health"),
    ("/docs/", "/docs"),
]


@pytest.mark.parametrize(("path", "target"), REDIRECTS)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8443", "EVIL.example"])
def test_a_forged_host_never_reaches_a_redirect(
    gateway: BackgroundServer, path: str, target: str, host: str
) -> None:
    status, headers, _ = _get(gateway, path, [("Host", host)])
    assert status == 307
    assert headers["location"] == target
    assert "evil" not in str(headers).lower()


def test_a_redirect_without_a_host_header_is_a_path(gateway: BackgroundServer) -> None:
    # HTTP/1.0 clients send no Host: Starlette then names the server's own address.
    status, headers, _ = _get(gateway, "/v2/customers/", [])
    assert (status, headers["location"]) == (307, "/v2/customers")


def test_a_redirect_still_leads_to_the_resource(v2: Stack) -> None:
    answer = v2.get("/customers/", user="viewer")
    assert answer.status_code == 200
    assert answer.url == f"{v2.url}/customers"


@pytest.mark.parametrize("stack_name", STACKS)
@pytest.mark.parametrize("path", ["/customers", "/products"])
def test_two_authorization_headers_are_400_on_both_stacks(
    gateway: BackgroundServer, tokens: dict[str, str], stack_name: str, path: str
) -> None:
    stack = Stack(stack_name, gateway.url, tokens)
    viewer, admin = (f"Bearer {tokens[user]}" for user in ("viewer", "admin"))
    for pair in ([viewer, admin], [viewer, viewer], [viewer, "Basic Y2xlcms6ZGVtbw=="]):
        status, headers, body = _get(
            gateway,
            stack.prefix + path,
            [("Host", f"{gateway.host}:{gateway.port}"), *(("Authorization", v) for v in pair)],
        )
        error = assert_error(stack, _as_response(status, headers, body), 400)
        assert "Authorization" in str(error)
        assert headers["x-frame-options"] == "DENY"
    # One header still works.
    assert stack.get(path, user="viewer").status_code == 200


def test_two_authorization_headers_are_400_on_the_gateways_own_routes(
    gateway: BackgroundServer,
) -> None:
    answer = _as_response(
        *_get(
            gateway,
            "/health",
            [("Host", "localhost"), ("Authorization", "a"), ("Authorization", "b")],
        )
    )
    assert_error(Stack("v2", gateway.url, {}), answer, 400)


# Answers of every kind: data, errors of each stack, the gateway's own, and a redirect.
JSON_ANSWERS = [
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/nowhere"),
    ("GET", "/legacy/products"),
    ("GET", "/legacy/customers"),
    ("POST", "/legacy/auth/token"),
    ("GET", "/v2/products/1"),
    ("GET", "/v2/customers"),
    ("POST", "/v2/auth/token"),
    ("GET", "/v2/customers/"),
    ("GET", "/docs/"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ANSWERS)
def test_every_api_answer_may_load_nothing_and_never_be_framed(
    gateway: BackgroundServer, method: str, path: str
) -> None:
    answer = requests.request(method, gateway.url + path, timeout=10, allow_redirects=False)
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Content-Security-Policy"] == API_POLICY
    assert API_POLICY == "default-src 'none'; frame-ancestors 'none'"


def _directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        parsed[name] = sources
    return parsed


def _inline_script_hashes(html: str) -> list[str]:
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    ]


def _page(gateway: BackgroundServer, path: str) -> tuple[str, dict[str, list[str]]]:
    answer = requests.get(gateway.url + path, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["X-Frame-Options"] == "DENY"
    return answer.text, _directives(answer.headers["Content-Security-Policy"])


CDN = "https://cdn.jsdelivr.net"


def test_swagger_ui_may_load_what_it_loads_and_nothing_else(gateway: BackgroundServer) -> None:
    html, policy = _page(gateway, "/docs")
    hashes = _inline_script_hashes(html)
    assert len(hashes) == 1
    assert f'<script src="{CDN}/' in html
    assert policy["default-src"] == ["'none'"]
    # The bundle from the CDN and FastAPI's inline start-up script, by its hash: no other
    # inline script runs.
    assert sorted(policy["script-src"]) == sorted([CDN, *hashes])
    assert f'<link type="text/css" rel="stylesheet" href="{CDN}/' in html
    assert CDN in policy["style-src"]
    assert "https://fastapi.tiangolo.com" in policy["img-src"]
    # The OpenAPI document and "Try it out" go to the gateway itself, nowhere else.
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-eval'" not in str(policy)


def test_redoc_may_load_what_it_loads_and_nothing_else(gateway: BackgroundServer) -> None:
    html, policy = _page(gateway, "/redoc")
    assert _inline_script_hashes(html) == []
    assert f'<script src="{CDN}/npm/redoc' in html
    assert policy["script-src"] == [CDN]
    assert "https://fonts.googleapis.com" in policy["style-src"]
    assert "https://fonts.googleapis.com" in html
    assert policy["font-src"] == ["https://fonts.gstatic.com"]
    assert policy["connect-src"] == ["'self'"]
    # Its search runs in a worker built from a blob; nothing else may run as a worker.
    assert policy["worker-src"] == ["blob:"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_the_oauth2_redirect_page_may_run_its_own_script_only(gateway: BackgroundServer) -> None:
    html, policy = _page(gateway, "/docs/oauth2-redirect")
    hashes = _inline_script_hashes(html)
    assert len(hashes) == 1
    assert policy["script-src"] == hashes
    assert set(policy) == {
        "default-src",
        "script-src",
        "base-uri",
        "form-action",
        "frame-ancestors",
    }


def test_a_page_policy_stays_on_its_page(gateway: BackgroundServer) -> None:
    answer = requests.get(gateway.url + "/docs/nowhere", timeout=10)
    assert answer.status_code == 404
    assert answer.headers["Content-Security-Policy"] == API_POLICY
