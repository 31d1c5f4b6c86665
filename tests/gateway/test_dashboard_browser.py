"""The dashboard in headless Chromium (Debian's, driven by Playwright), offline: log in, see
every route, move one to `shadow`, send traffic, watch its parity appear, move it to `v2`.
The browser reaches the gateway and nothing else; a screenshot of the end is kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from tests.gateway.dashboard_gateway import TOKEN, gateway, same_note_on_both_sides
from tests.gateway.ledger_pair import LEDGER
from tests.gateway.test_docs_offline import CHROMIUM, CHROMIUM_ARGS, WATCH_CSP

__all__ = ["gateway"]  # the fixture
# The table refreshes every 3 s; a busy two-core machine gets some slack on top.
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium`", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _change(page: Page, route_id: str, state: str, reason: str) -> None:
    page.select_option("#change-route", route_id)
    page.select_option("#change-state", state)
    page.fill("#change-share", "100")
    page.fill("#change-reason", reason)
    page.get_by_role("button", name="Change").click()
    expect(page.locator("#change-result")).to_have_text(
        f"{route_id} is now {state} (share 100 %)", timeout=WAIT_MS
    )


def test_log_in_shadow_a_route_watch_its_parity_and_cut_it_over(
    browser: Browser, gateway: str, tmp_path: Path
) -> None:
    origin = urlsplit(gateway).netloc
    elsewhere: list[str] = []
    errors: list[str] = []

    def offline(route: Route) -> None:
        if urlsplit(route.request.url).netloc == origin:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    context = browser.new_context()
    context.add_init_script(WATCH_CSP)
    context.route("**/*", offline)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    screenshot = tmp_path / "dashboard.png"
    try:
        page.goto(f"{gateway}/_gateway")
        assert urlsplit(page.url).path == "/_gateway/login"
        page.fill("#token", TOKEN)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{gateway}/_gateway")

        rows = page.locator("#routes tbody tr")
        expect(rows).to_have_count(len(LEDGER.routes), timeout=WAIT_MS)
        for route in LEDGER.routes:
            expect(page.locator(f'tr[data-route="{route.id}"]')).to_contain_text(route.id)

        _change(page, "notes.read", "shadow", "compare on live traffic")
        read = page.locator('tr[data-route="notes.read"]')
        expect(read.locator("td.state")).to_contain_text("shadow", timeout=WAIT_MS)

        note = same_note_on_both_sides(gateway)
        for _ in range(3):
            requests.get(f"{gateway}/legacy/notes/{note['id']}", timeout=10).raise_for_status()
        expect(read.locator("td.parity")).to_contain_text("100.0 % matched", timeout=WAIT_MS)
        expect(read.locator("td.parity")).to_contain_text("3 / 3 compared")
        expect(read.locator("td.served")).to_contain_text("legacy: 3 req, 100.0 % of traffic")

        _change(page, "notes.read", "v2", "parity held")
        expect(read.locator("td.state")).to_contain_text("v2", timeout=WAIT_MS)
        requests.get(f"{gateway}/legacy/notes/{note['id']}", timeout=10).raise_for_status()
        expect(read.locator("td.served")).to_contain_text("v2: 1 req", timeout=WAIT_MS)
        expect(read.locator("td.verdict")).to_contain_text("Flask served 3 requests")
        violations = page.evaluate("window.__cspViolations")
    finally:
        page.screenshot(path=str(screenshot), full_page=True)
        context.close()

    history = requests.get(
        f"{gateway}/_gateway/routes/notes.read/history",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()
    moves = [(c["after"]["state"], c["reason"]) for c in history["changes"]]
    assert moves == [("shadow", "compare on live traffic"), ("v2", "parity held")], screenshot
    assert all(TOKEN not in url for url in visited), visited
    assert elsewhere == [], f"the page asked other hosts: {elsewhere}; screenshot {screenshot}"
    assert errors == [], f"the browser reported {errors}; screenshot {screenshot}"
    assert violations == [], f"the page's policy refused {violations}; screenshot {screenshot}"
    assert screenshot.stat().st_size > 0
