"""The admin API of the route ledger, as an operator uses it: token, changes, history,
errors as problem details, its place in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import ValidationError

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from gateway.settings import GatewaySettings
from tests.gateway.control_database import BACKENDS, control_database
from tests.gateway.ledger_pair import NOTES_PAIR_OPTIONS, notes_pair
from tests.support import wait_for

TOKEN = "an-admin-token-" + "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN_PATHS = ["/_gateway/routes", "/_gateway/routes/notes.read/history"]


def _settings(**overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {**NOTES_PAIR_OPTIONS, "log_level": "WARNING", "admin_token": TOKEN}
    return GatewaySettings(**(values | overrides))


def _serve(url: str, **overrides: Any) -> BackgroundServer:
    settings = _settings(**overrides)
    return BackgroundServer(create_gateway(settings, notes_pair(url)), settings=settings)


@pytest.fixture
def control_url(tmp_path: Path) -> Iterator[str]:
    with control_database("sqlite", tmp_path) as url:
        yield url


@pytest.fixture
def admin(control_url: str) -> Iterator[str]:
    with _serve(control_url) as server:
        yield server.url


def _problem(answer: requests.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["detail"]
    return body


def _patch(base: str, route_id: str, body: Any, **headers: str) -> requests.Response:
    return requests.patch(
        f"{base}/_gateway/routes/{route_id}", json=body, headers=AUTH | headers, timeout=10
    )


def _routes(base: str) -> dict[str, dict[str, Any]]:
    answer = requests.get(f"{base}/_gateway/routes", headers=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    return {route["id"]: route for route in answer.json()["routes"]}


def test_without_the_setting_the_admin_api_is_not_there(control_url: str) -> None:
    with _serve(control_url, admin_token=None) as server:
        for path in ADMIN_PATHS:
            _problem(requests.get(server.url + path, headers=AUTH, timeout=10), 404)
        _problem(_patch(server.url, "notes.read", {"state": "v2"}), 404)
        document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
        assert not any(path.startswith("/_gateway") for path in document["paths"])


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
)
def test_without_the_token_nothing_is_read_or_changed(
    admin: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for path in ADMIN_PATHS:
        answer = requests.get(admin + path, headers=headers, timeout=10)
        _problem(answer, 401)
        assert answer.headers["www-authenticate"].startswith("Bearer")
    # Refused before its body is read: even a malformed one gets 401, not 422.
    answer = requests.patch(
        f"{admin}/_gateway/routes/notes.read", data=b"{not json", headers=headers, timeout=10
    )
    _problem(answer, 401)
    assert _routes(admin)["notes.read"]["state"] == "legacy"


def test_the_list_describes_every_route(admin: str) -> None:
    routes = _routes(admin)
    assert list(routes) == ["notes.list", "notes.read", "notes.create", "slow"]
    assert routes["notes.read"] == {
        "id": "notes.read",
        "legacy": {"method": "GET", "rule": "/notes/<int:note_id>"},
        "v2": {"method": "GET", "path": "/notes/{note_id}"},
        "state": "legacy",
        "deprecation": None,
        "sunset": None,
        "share": 100,
        "adapter": True,
        "legacy_only": None,
        "shadow": {"compared": 0, "matched": 0, "mismatched": 0, "errored": 0, "dropped": 0},
    }
    assert routes["notes.create"]["adapter"] is False
    assert routes["notes.create"]["shadow"] is None
    assert routes["slow"]["v2"] is None
    assert routes["slow"]["legacy_only"] == "a test route, never moved"


def test_a_change_is_served_and_its_history_kept(admin: str) -> None:
    answer = _patch(
        admin, "notes.read", {"state": "v2", "reason": "v2 passed"}, **{"X-Gateway-Actor": "ops-1"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "v2"
    assert _routes(admin)["notes.read"]["state"] == "v2"

    announced = _patch(
        admin, "notes.read", {"deprecation": "2027-01-31", "sunset": "2027-06-30T12:00:00+02:00"}
    )
    assert announced.status_code == 200, announced.text
    body = announced.json()
    # A date alone is midnight UTC; the state set before is kept.
    assert (body["state"], body["deprecation"], body["sunset"]) == (
        "v2",
        "2027-01-31T00:00:00Z",
        "2027-06-30T10:00:00Z",
    )
    cleared = _patch(admin, "notes.read", {"sunset": None, "reason": "date moved"})
    assert cleared.json()["sunset"] is None
    assert cleared.json()["deprecation"] == "2027-01-31T00:00:00Z"

    history = requests.get(f"{admin}/_gateway/routes/notes.read/history", headers=AUTH, timeout=10)
    assert history.status_code == 200, history.text
    assert history.json()["route_id"] == "notes.read"
    changes = history.json()["changes"]
    assert [(c["before"]["state"], c["after"]["state"]) for c in changes] == [
        ("legacy", "v2"),
        ("v2", "v2"),
        ("v2", "v2"),
    ]
    assert changes[0]["actor"] == "ops-1 (admin-api 127.0.0.1)"
    assert changes[0]["reason"] == "v2 passed"
    assert changes[1]["actor"] == "admin-api 127.0.0.1"
    assert changes[2]["before"]["sunset"] == "2027-06-30T10:00:00Z"
    assert changes[0]["at"].endswith("Z")


@pytest.mark.parametrize(
    ("route_id", "body", "status"),
    [
        ("notes.read", {"state": "v2", "owner": "me"}, 422),  # unknown field
        ("notes.read", {"state": None}, 422),
        ("notes.read", {"state": "sideways"}, 422),
        ("notes.read", {"deprecation": "next tuesday"}, 422),
        ("notes.read", {"reason": "x" * 1001}, 422),
        ("notes.read", ["state", "v2"], 422),
        ("notes.create", {"state": "canary"}, 422),  # no adapter
        ("notes.read", {"deprecation": "2027-06-30", "sunset": "2027-01-31"}, 422),
        ("notes.create", {"state": "v2"}, 422),  # no adapter
        ("slow", {"state": "v2"}, 422),  # legacy-only
        ("notes.nothing", {"state": "v2"}, 404),
    ],
)
def test_a_refused_change_is_a_problem_and_changes_nothing(
    admin: str, route_id: str, body: Any, status: int
) -> None:
    _problem(_patch(admin, route_id, body), status)
    routes = _routes(admin)
    assert {route["state"] for route in routes.values()} == {"legacy"}
    assert all(route["deprecation"] is None for route in routes.values())


def test_an_unknown_field_is_named(admin: str) -> None:
    body = _problem(_patch(admin, "notes.read", {"state": "v2", "owner": "me"}), 422)
    assert [error["loc"] for error in body["errors"]] == [["body", "owner"]]


def test_the_history_of_an_unknown_route_is_404(admin: str) -> None:
    answer = requests.get(
        f"{admin}/_gateway/routes/notes.nothing/history", headers=AUTH, timeout=10
    )
    _problem(answer, 404)


def test_the_admin_api_is_in_the_openapi_document_under_its_own_tag(admin: str) -> None:
    document = requests.get(f"{admin}/openapi.json", timeout=10).json()
    admin_paths = {path: item for path, item in document["paths"].items() if "_gateway" in path}
    assert set(admin_paths) == {
        "/_gateway/routes",
        "/_gateway/routes/{route_id}",
        "/_gateway/routes/{route_id}/shadow",
        "/_gateway/routes/{route_id}/canary",
        "/_gateway/routes/{route_id}/history",
        "/_gateway/readiness",
    }
    # v2's paths are under the v2 prefix; these are not.
    assert document["servers"] == [{"url": "/v2"}]
    tag = next(tag for tag in document["tags"] if tag["name"].startswith("Gateway"))
    for item in admin_paths.values():
        assert item["servers"] == [{"url": "/"}]
        for method in ("get", "patch"):
            if method in item:
                assert item[method]["tags"] == [tag["name"]]
                assert item[method]["security"] == [{"GatewayAdminToken": []}]
    assert document["components"]["securitySchemes"]["GatewayAdminToken"]["scheme"] == "bearer"
    assert "GatewayRoutePatch" in document["components"]["schemas"]
    # v2's own paths are all still there.
    assert "/notes/{note_id}" in document["paths"]


def test_a_short_admin_token_is_refused_in_production_only() -> None:
    with pytest.raises(ValidationError, match="GATEWAY_ADMIN_TOKEN"):
        GatewaySettings(env="production", admin_token="short-token")
    assert GatewaySettings(env="production", admin_token="p" * 32).admin_token is not None
    assert GatewaySettings(env="development", admin_token="short").admin_token is not None
    with pytest.raises(ValidationError):
        GatewaySettings(admin_token="")


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_gateways_over_one_control_database_agree_within_two_seconds(
    backend: str, tmp_path: Path
) -> None:
    with control_database(backend, tmp_path) as url, _serve(url) as first, _serve(url) as second:
        assert _routes(second.url)["notes.list"]["state"] == "legacy"
        assert _patch(first.url, "notes.list", {"state": "v2"}).status_code == 200
        wait_for(
            lambda: _routes(second.url)["notes.list"]["state"] == "v2",
            "the second gateway serving the first one's change",
            timeout_s=2.0,
        )
        assert _patch(second.url, "notes.list", {"state": "retired"}).status_code == 200
        wait_for(
            lambda: _routes(first.url)["notes.list"]["state"] == "retired",
            "the first gateway serving the second one's change",
            timeout_s=2.0,
        )
