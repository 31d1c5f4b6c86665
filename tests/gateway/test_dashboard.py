"""The dashboard's access over HTTP, as a browser and an attacker would try it: the login
trades the admin token (in a form body, never a URL) for an HttpOnly, SameSite=Strict
cookie scoped to /_gateway; the readiness summary and changes take that cookie only with
its CSRF token; logout ends it; the bearer token keeps working; the landing page links."""

from __future__ import annotations

import re
from typing import Any

import requests

from tests.gateway.dashboard_gateway import TOKEN, gateway, same_note_on_both_sides
from tests.gateway.ledger_pair import LEDGER
from tests.support import wait_for

__all__ = ["gateway"]  # the fixture

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _log_in(base: str) -> tuple[requests.Session, str]:
    """A logged-in browser-like session, and the CSRF token its dashboard page holds."""
    browser = requests.Session()
    answer = browser.post(f"{base}/_gateway/login", data={"token": TOKEN}, timeout=10)
    assert answer.status_code == 200 and answer.url == f"{base}/_gateway", answer.text
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', answer.text)
    assert found is not None, answer.text
    return browser, found.group(1)


def test_the_login_sets_a_strict_http_only_cookie_for_the_dashboard_only(gateway: str) -> None:
    page = requests.get(f"{gateway}/_gateway", allow_redirects=False, timeout=10)
    assert (page.status_code, page.headers["location"]) == (303, "/_gateway/login")
    form = requests.get(f"{gateway}/_gateway/login", timeout=10)
    assert form.status_code == 200
    assert '<form method="post" action="/_gateway/login">' in form.text
    assert 'type="password"' in form.text

    answer = requests.post(
        f"{gateway}/_gateway/login", data={"token": TOKEN}, allow_redirects=False, timeout=10
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/_gateway")
    cookie = answer.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith("gateway_session=")
    assert {"httponly", "max-age", "path"} <= attributes
    assert "Path=/_gateway" in cookie and "SameSite=strict" in cookie
    assert TOKEN not in cookie


def test_a_wrong_token_gets_the_form_again_and_no_cookie(gateway: str) -> None:
    answer = requests.post(
        f"{gateway}/_gateway/login", data={"token": "guess"}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    assert "That is not the admin token." in answer.text


def test_no_token_or_csrf_token_in_any_url(gateway: str) -> None:
    browser, csrf = _log_in(gateway)
    page = browser.get(f"{gateway}/_gateway", timeout=10)
    urls = re.findall(r'(?:href|src|action)="([^"]*)"', page.text)
    assert urls, page.text
    for url in urls:
        assert TOKEN not in url and csrf not in url
    assert all(url.startswith("/") for url in urls), "the page loads from the gateway only"
    script = browser.get(f"{gateway}/_gateway/static/dashboard/dashboard.js", timeout=10)
    assert script.status_code == 200
    assert (
        "X-CSRF-Token" in script.text and "?" not in re.findall(r"fetch\(([^,]*)", script.text)[0]
    )
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_the_cookie_alone_reads_and_changes_nothing(gateway: str) -> None:
    browser, csrf = _log_in(gateway)
    assert browser.get(f"{gateway}/_gateway/readiness", timeout=10).status_code == 401
    refused = browser.patch(
        f"{gateway}/_gateway/routes/notes.read", json={"state": "v2", "reason": "x"}, timeout=10
    )
    assert refused.status_code == 401
    wrong = browser.patch(
        f"{gateway}/_gateway/routes/notes.read",
        json={"state": "v2", "reason": "x"},
        headers={"X-CSRF-Token": "0" * len(csrf)},
        timeout=10,
    )
    assert wrong.status_code == 401
    # The route did not move, and its history holds nothing.
    history = requests.get(
        f"{gateway}/_gateway/routes/notes.read/history", headers=AUTH, timeout=10
    )
    assert history.json()["changes"] == []
    # The CSRF token without the cookie is nothing either.
    bare = requests.get(f"{gateway}/_gateway/readiness", headers={"X-CSRF-Token": csrf}, timeout=10)
    assert bare.status_code == 401
    # Other admin routes take the bearer token only.
    listed = browser.get(f"{gateway}/_gateway/routes", headers={"X-CSRF-Token": csrf}, timeout=10)
    assert listed.status_code == 401


def test_the_cookie_with_its_csrf_token_reads_and_changes_as_the_dashboard(gateway: str) -> None:
    browser, csrf = _log_in(gateway)
    headers = {"X-CSRF-Token": csrf}
    summary = browser.get(f"{gateway}/_gateway/readiness", headers=headers, timeout=10)
    assert summary.status_code == 200
    assert [route["id"] for route in summary.json()["routes"]] == [
        route.id for route in LEDGER.routes
    ]
    changed = browser.patch(
        f"{gateway}/_gateway/routes/notes.read",
        json={"state": "shadow", "share": 100, "reason": "compare first"},
        headers=headers,
        timeout=10,
    )
    assert changed.status_code == 200 and changed.json()["state"] == "shadow"
    history = requests.get(
        f"{gateway}/_gateway/routes/notes.read/history", headers=AUTH, timeout=10
    )
    (change,) = history.json()["changes"]
    assert change["reason"] == "compare first"
    assert change["actor"].startswith("dashboard ")


def test_logout_ends_the_session_and_needs_its_csrf_token(gateway: str) -> None:
    browser, csrf = _log_in(gateway)
    forged = browser.post(f"{gateway}/_gateway/logout", data={}, allow_redirects=False, timeout=10)
    assert forged.status_code == 403
    assert browser.get(f"{gateway}/_gateway", allow_redirects=False, timeout=10).status_code == 200
    answer = browser.post(
        f"{gateway}/_gateway/logout", data={"csrf_token": csrf}, allow_redirects=False, timeout=10
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/_gateway/login")
    assert "Max-Age=0" in answer.headers["set-cookie"]
    page = browser.get(f"{gateway}/_gateway", allow_redirects=False, timeout=10)
    assert (page.status_code, page.headers["location"]) == (303, "/_gateway/login")


def test_a_forged_or_expired_cookie_is_no_session(gateway: str) -> None:
    browser, _ = _log_in(gateway)
    real = browser.cookies["gateway_session"]
    expiry, nonce, signature = real.split(".")
    for forged in (
        f"{int(expiry) + 3600}.{nonce}.{signature}",
        f"{expiry}.{nonce}.{'0' * len(signature)}",
        "",
    ):
        page = requests.get(
            f"{gateway}/_gateway",
            cookies={"gateway_session": forged},
            allow_redirects=False,
            timeout=10,
        )
        assert page.status_code == 303, forged


def test_the_bearer_token_reads_the_readiness_with_each_implementation(gateway: str) -> None:
    note = same_note_on_both_sides(gateway)
    requests.patch(
        f"{gateway}/_gateway/routes/notes.read",
        json={"state": "shadow", "reason": "compare"},
        headers=AUTH,
        timeout=10,
    )
    for _ in range(3):
        assert requests.get(f"{gateway}/legacy/notes/{note['id']}", timeout=10).status_code == 200

    def compared() -> dict[str, Any] | None:
        summary = requests.get(f"{gateway}/_gateway/readiness", headers=AUTH, timeout=10)
        assert summary.status_code == 200
        route: dict[str, Any] = next(r for r in summary.json()["routes"] if r["id"] == "notes.read")
        return route if route["shadow"]["compared"] == 3 else None

    route = wait_for(compared, "three comparisons")
    assert route["verdict"] == "ready to cut over", route["mismatches"]
    assert route["why"] == "3 of 3 answers matched"
    assert route["shadow"]["parity"] == 1.0
    (legacy,) = route["implementations"]
    assert (legacy["served_by"], legacy["requests"], legacy["share"]) == ("legacy", 3, 1.0)
    assert legacy["p95_ms"] >= legacy["p50_ms"] > 0

    requests.patch(
        f"{gateway}/_gateway/routes/notes.read",
        json={"state": "v2", "reason": "cut over"},
        headers=AUTH,
        timeout=10,
    )
    assert requests.get(f"{gateway}/legacy/notes/{note['id']}", timeout=10).status_code == 200
    summary = requests.get(f"{gateway}/_gateway/readiness", headers=AUTH, timeout=10).json()
    route = next(r for r in summary["routes"] if r["id"] == "notes.read")
    assert {i["served_by"]: i["requests"] for i in route["implementations"]} == {
        "legacy": 3,
        "v2": 1,
    }
    assert route["verdict"] == "not ready"
    assert route["why"] == "Flask served 3 requests in the window"
    slow = next(r for r in summary["routes"] if r["id"] == "slow")
    assert (slow["verdict"], slow["shadow"]) == ("not ready", None)


def test_the_landing_page_links_the_dashboard_the_docs_and_names_both_apis(gateway: str) -> None:
    answer = requests.get(f"{gateway}/", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    links = re.findall(r'<a href="([^"]+)"', answer.text)
    assert links == ["/_gateway", "/docs", "/health"]
    assert "<code>/v2/...</code>" in answer.text and "<code>/legacy/...</code>" in answer.text
    for link in links:
        assert requests.get(f"{gateway}{link}", timeout=10).status_code == 200, link
