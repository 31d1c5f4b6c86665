"""/docs and /redoc work with no network but the gateway, under their own strict CSP.

The pages are loaded in headless Chromium (Debian's, driven by Playwright) with every
request to another host aborted and counted, and the browser's CSP violation reports
collected: the operations of the v2 API must be listed, nothing must be fetched from
elsewhere, and the policy must refuse nothing the pages need.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    sync_playwright,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from starlette.responses import PlainTextResponse

from gateway.background_server import BackgroundServer
from gateway.docs import ASSETS, ASSETS_URL
from gateway.responses import ErrorFormats
from gateway.security_headers import SecurityHeaders
from tests.support import DEMO_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu"]
# Generous: the bundles are megabytes of JavaScript on a busy two-core machine.
PAGE_TIMEOUT_MS = 30_000

# Collects what the page's policy refused, from before the first script of the page runs.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push({directive: event.effectiveDirective, blocked: event.blockedURI});
});
"""

# ReDoc's sidebar shows the vendor's logo from its CDN, unconditionally, and hides the
# image when it does not load: the policy refusing it is the point, and costs only the logo.
HARMLESS_VIOLATIONS = [
    {"directive": "img-src", "blocked": "https://cdn.redoc.ly/redoc/logo-mini.svg"}
]

# The only sources a docs page may allow: its own origin, and the inline styles, data:
# images and blob: workers that the UIs make themselves. No host, no scheme-wide source.
LOCAL_SOURCES = {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}


@dataclass
class Offline:
    """A browser context that reaches the gateway and nothing else, and what it saw."""

    context: BrowserContext
    origin: str
    aborted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        if urlsplit(route.request.url).netloc == self.origin:
            route.continue_()
        else:
            self.aborted.append(route.request.url)
            route.abort("internetdisconnected")

    def watch(self, page: Page) -> None:
        """Every page of the context, popups included."""
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def open(self, url: str) -> Page:
        page = self.context.new_page()
        answer = page.goto(url)
        assert answer is not None and answer.status == 200
        # Loaded: every script and stylesheet the page names has been asked for by now.
        assert self.aborted == [], f"the page asked other hosts: {self.aborted}"
        return page

    def until(self, wait: Callable[[], object], what: str) -> None:
        """Wait as long as the page timeout allows; a timeout says what the browser reported."""
        try:
            wait()
        except PlaywrightTimeoutError:
            pytest.fail(f"{what} never came; the browser reported: {self.errors}", pytrace=False)

    def _console(self, message: ConsoleMessage) -> None:
        harmless = any(v["blocked"] in message.text for v in HARMLESS_VIOLATIONS)
        if message.type == "error" and not harmless:
            self.errors.append(message.text)


# The pages do not depend on the database: one run in the browser, on SQLite, is enough.
in_one_browser_run = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run installs it)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def offline(browser: Browser, gateway: BackgroundServer) -> Iterator[Offline]:
    context = browser.new_context()
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    watcher = Offline(context, origin=f"{gateway.host}:{gateway.port}")
    context.add_init_script(WATCH_CSP)
    context.route("**/*", watcher.route)
    context.on("page", watcher.watch)
    yield watcher
    context.close()


@pytest.fixture(scope="module")
def swagger_ui(offline: Offline, gateway: BackgroundServer) -> Page:
    """/docs, loaded once for the module (megabytes of JavaScript), its operations shown."""
    page = offline.open(f"{gateway.url}/docs")
    offline.until(page.locator(".opblock").first.wait_for, "the operations")
    return page


def _violations(page: Page) -> list[dict[str, str]]:
    found: list[dict[str, str]] = page.evaluate("window.__cspViolations")
    return found


def _operations(gateway: BackgroundServer) -> dict[tuple[str, str], str]:
    """Every operation of the OpenAPI document: (method, path) to its operationId."""
    document = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()
    return {
        (method, path): operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def _policy(answer: requests.Response) -> dict[str, list[str]]:
    (header,) = answer.raw.headers.getlist("Content-Security-Policy")
    directives = (d.split() for d in header.split(";") if d.strip())
    return {name: sources for name, *sources in directives}


@in_one_browser_run
def test_swagger_ui_lists_every_operation_without_leaving_the_gateway(
    offline: Offline, swagger_ui: Page, gateway: BackgroundServer
) -> None:
    listed = swagger_ui.eval_on_selector_all(
        ".opblock",
        """blocks => blocks.map(b => [
            b.className.match(/opblock-(get|post|put|patch|delete)/)[1],
            b.querySelector(".opblock-summary-path").dataset.path,
        ])""",
    )
    assert ["get", "/products/{product_id}"] in listed
    assert {tuple(op) for op in listed} == set(_operations(gateway))
    assert offline.aborted == []
    assert _violations(swagger_ui) == []
    assert offline.errors == []


@in_one_browser_run
def test_swagger_ui_logs_in_with_the_password_flow(offline: Offline, swagger_ui: Page) -> None:
    # Authorize posts the form to /v2/auth/token from the page: the policy must allow it.
    swagger_ui.locator(".scheme-container button.authorize").click()
    swagger_ui.locator("#oauth_username").fill("clerk")
    swagger_ui.locator("#oauth_password").fill(DEMO_PASSWORD)
    swagger_ui.get_by_role("button", name="Apply given OAuth2 credentials").click()
    logged_in = swagger_ui.get_by_role("button", name="Remove authorization")
    offline.until(logged_in.wait_for, "the logged-in state")
    swagger_ui.get_by_role("button", name="Close").first.click()
    assert offline.aborted == []
    assert _violations(swagger_ui) == []
    assert offline.errors == []


@in_one_browser_run
def test_the_oauth2_redirect_page_hands_the_token_back_under_its_policy(
    offline: Offline, swagger_ui: Page
) -> None:
    # What Swagger UI leaves for the popup at the end of an implicit flow, and the popup.
    # The popup's script runs only if its page's policy lets it: then the callback fires.
    swagger_ui.evaluate(
        """() => {
            window.swaggerUIRedirectOauth2 = {
                state: "s-1",
                redirectUrl: window.location.origin + "/docs/oauth2-redirect",
                auth: {name: "OAuth2PasswordBearer", schema: {get: () => "implicit"}},
                callback: (result) => { window.__oauth2 = result; },
                errCb: (error) => { window.__oauth2 = {error: error.message}; },
            };
            window.open("/docs/oauth2-redirect#access_token=t-1&token_type=bearer&state=s-1");
        }"""
    )
    # A function: Playwright would run a bare expression through eval, which the policy refuses.
    offline.until(
        lambda: swagger_ui.wait_for_function("() => window.__oauth2 !== undefined"),
        "the redirect page's answer",
    )
    result = swagger_ui.evaluate(
        "() => ({token: window.__oauth2.token, valid: window.__oauth2.isValid})"
    )
    assert result == {
        "token": {"access_token": "t-1", "token_type": "bearer", "state": "s-1"},
        "valid": True,
    }
    assert offline.aborted == []
    assert offline.errors == []


@in_one_browser_run
def test_redoc_lists_every_operation_without_leaving_the_gateway(
    offline: Offline, gateway: BackgroundServer
) -> None:
    page = offline.open(f"{gateway.url}/redoc")
    entries = page.locator("[data-item-id*='/operation/']").first
    offline.until(lambda: entries.wait_for(state="attached"), "the operations")
    listed = page.eval_on_selector_all(
        "[data-item-id*='/operation/']",
        """items => items.map(i => [
            i.querySelector(".operation-type").getAttribute("type"),
            i.dataset.itemId.split("/operation/")[1],
        ])""",
    )
    operations = _operations(gateway)
    assert ["get", operations[("get", "/products/{product_id}")]] in listed
    assert {tuple(op) for op in listed} == {
        (method, operation_id) for (method, _), operation_id in operations.items()
    }
    # The search box works: its index is built in a worker the policy must let start.
    page.get_by_role("textbox", name="Search").fill("Read Product")
    offline.until(page.locator("[data-role='search:results'] li").first.wait_for, "search results")

    assert offline.aborted == []
    assert _violations(page) == HARMLESS_VIOLATIONS
    assert offline.errors == []


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_each_docs_page_allows_only_the_gateways_own_origin(
    gateway: BackgroundServer, path: str
) -> None:
    answer = requests.get(gateway.url + path, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    policy = _policy(answer)
    assert policy["default-src"] == ["'self'"]
    # Scripts fall back to default-src: files from the gateway, never inline code.
    assert "script-src" not in policy
    assert "script-src-elem" not in policy
    assert policy["frame-ancestors"] == ["'none'"]
    assert {source for sources in policy.values() for source in sources} <= LOCAL_SOURCES
    assert re.search(r"<script(?![^>]*\bsrc=)", answer.text) is None
    for url in re.findall(r'(?:src|href)="([^"]*)"', answer.text):
        assert url.startswith(ASSETS_URL + "/"), url


# JavaScript under its current type or the older one Python before 3.12 may give it:
# browsers run either, and refuse anything else under `X-Content-Type-Options: nosniff`.
CONTENT_TYPES = {
    ".js": {"text/javascript", "application/javascript"},
    ".css": {"text/css"},
    ".png": {"image/png"},
}


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_every_docs_asset_is_served_with_its_type(gateway: BackgroundServer, name: str) -> None:
    answer = requests.get(f"{gateway.url}{ASSETS_URL}/{name}", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] in CONTENT_TYPES[Path(name).suffix]
    assert answer.content


def test_an_unknown_docs_asset_is_a_problem_404(gateway: BackgroundServer) -> None:
    answer = requests.get(f"{gateway.url}{ASSETS_URL}/nothing.js", timeout=10)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_header_the_app_sets_itself_is_sent_once() -> None:
    # The docs pages bring their own Content-Security-Policy: the gateway's default must
    # not be sent beside it, because a browser enforces every policy it receives.
    app = PlainTextResponse(
        "own headers",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'self'",
        },
    )
    with BackgroundServer(SecurityHeaders(app, errors=ErrorFormats()), lifespan="off") as server:
        answer = requests.get(server.url, timeout=10)
    assert answer.raw.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert answer.raw.headers.getlist("Content-Security-Policy") == ["default-src 'self'"]
