"""What the gateway's response middleware guards on both stacks: forged Host headers in
redirects, duplicate Authorization headers, and the framing and content policies of
every answer, the documentation pages' own in tests/gateway/test_docs_offline.py."""

from __future__ import annotations

import http.client

import pytest
import requests

from gateway.background_server import BackgroundServer
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


API_POLICY = "default-src 'none'; frame-ancestors 'none'"

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


def test_a_page_policy_stays_on_its_page(gateway: BackgroundServer) -> None:
    answer = requests.get(gateway.url + "/docs/nowhere", timeout=10)
    assert answer.status_code == 404
    assert answer.headers["Content-Security-Policy"] == API_POLICY
