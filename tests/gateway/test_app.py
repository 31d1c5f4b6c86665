"""The gateway's own behaviour: health, docs, the body limit, the legacy pool's lifecycle."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from starlette.routing import Mount

from gateway.background_server import BackgroundServer
from gateway.ledger.dispatch import LedgerDispatch
from gateway.legacy_mount import LegacyMount
from shop.app import create_app
from tests.conftest import make_settings


def _legacy_mount(app: Any) -> LegacyMount:
    # Behind the route ledger's dispatch, which serves the routes that are not cut over with it.
    (dispatch,) = [r.app for r in app.routes if isinstance(r, Mount) and r.path == "/legacy"]
    assert isinstance(dispatch, LedgerDispatch)
    assert isinstance(dispatch.legacy, LegacyMount)
    return dispatch.legacy


def test_health_reports_the_database_and_both_stacks(gateway: BackgroundServer) -> None:
    answer = requests.get(f"{gateway.url}/health", timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["database"]) == ("ok", "ok")
    assert body["stacks"]["v2"] == {"prefix": "/v2"}
    legacy = body["stacks"]["legacy"]
    assert legacy["prefix"] == "/legacy"
    assert legacy["pool"]["threads"] == 10
    assert legacy["pool"]["saturated"] is False


def test_health_is_503_when_the_database_does_not_answer() -> None:
    # Nothing listens on port 1: the connection is refused at once.
    settings = make_settings("postgresql://nobody@127.0.0.1:1/none")
    with BackgroundServer(create_app(settings)) as server:
        answer = requests.get(f"{server.url}/health", timeout=10)
    assert answer.status_code == 503
    body = answer.json()
    assert (body["status"], body["database"]) == ("unavailable", "unavailable")
    # The route statuses could not be read either: every route is served by legacy meanwhile.
    assert body["route_statuses"] == "unavailable"
    # The stacks are still described: the gateway itself answers.
    assert set(body["stacks"]) == {"legacy", "v2"}


@pytest.mark.parametrize("path", ["/legacy/health", "/v2/health"])
def test_each_stack_answers_its_own_health(gateway: BackgroundServer, path: str) -> None:
    answer = requests.get(gateway.url + path, timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "stack": path.split("/")[1]}


def test_openapi_describes_v2_with_its_security_scheme(gateway: BackgroundServer) -> None:
    document = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()
    assert document["servers"] == [{"url": "/v2"}]
    assert set(document["paths"]) == {
        "/auth/token",
        "/health",
        "/products",
        "/products/{product_id}",
        "/customers",
        "/customers/{customer_id}",
        "/orders",
        "/orders/{order_id}",
        "/orders/{order_id}/cancel",
        "/shipping/quote",
    }
    (scheme,) = document["components"]["securitySchemes"].values()
    assert scheme["type"] == "oauth2"
    # Absolute: Swagger UI resolves a relative one against /docs, not against the server.
    assert scheme["flows"]["password"]["tokenUrl"] == "/v2/auth/token"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_interactive_docs_are_served_from_the_gateway(gateway: BackgroundServer, path: str) -> None:
    answer = requests.get(gateway.url + path, timeout=10)
    assert answer.status_code == 200
    assert "/openapi.json" in answer.text
    # No CDN: a page that loads from elsewhere is blank on a machine without internet.
    assert "http://" not in answer.text
    assert "https://" not in answer.text


def test_unknown_paths_get_problem_details(gateway: BackgroundServer) -> None:
    answer = requests.get(f"{gateway.url}/nowhere", timeout=10)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.fixture(scope="module")
def small_limit_gateway(database_url: str) -> Any:
    with BackgroundServer(create_app(make_settings(database_url, max_body_bytes=2048))) as server:
        yield server


@pytest.mark.parametrize(
    ("prefix", "content_type"),
    [("/legacy", "application/json"), ("/v2", "application/problem+json")],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_bodies_over_the_limit_get_413_on_both_stacks(
    small_limit_gateway: BackgroundServer, prefix: str, content_type: str, chunked: bool
) -> None:
    payload = b'{"name": "' + b"x" * 4000 + b'"}'
    data: Any = iter([payload[:1000], payload[1000:]]) if chunked else payload
    answer = requests.post(
        f"{small_limit_gateway.url}{prefix}/customers",
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith(content_type)


def test_the_legacy_pool_is_sized_by_settings_and_shut_down_with_the_gateway(
    database_url: str,
) -> None:
    app = create_app(make_settings(database_url, legacy_workers=3))
    mount = _legacy_mount(app)
    assert mount.executor._max_workers == 3
    threads_before = set(threading.enumerate())
    with BackgroundServer(app) as server:
        for _ in range(6):
            assert requests.get(f"{server.url}/legacy/products", timeout=10).status_code == 200
        assert len(mount.executor._threads) >= 1
    assert mount.executor._shutdown
    # A thread may still be on its way out when the server has returned: anyio stops its
    # worker threads (the v2 pool's dispose at shutdown runs in one) as the event loop's
    # root task ends. Each gets a moment to finish; one that never ends still fails.
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(timeout=5)
    assert set(threading.enumerate()) <= threads_before
