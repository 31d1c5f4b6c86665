"""The gateway's pages: the landing page at `/`, the migration dashboard at `/_gateway`, and
its login and logout.

The dashboard is a static page and a small script of the gateway's own
(gateway/static/dashboard), loaded from the gateway and nowhere else: it works offline,
under a policy that allows the gateway's origin only. The script reads
`GET /_gateway/readiness` every few seconds and sends changes as `PATCH
/_gateway/routes/{id}`, with the session's CSRF token in `X-CSRF-Token` (session.py). The
token is in the page, which only the holder of the session cookie gets.
"""

from __future__ import annotations

from html import escape
from typing import Final
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from gateway.dashboard.session import COOKIE, COOKIE_PATH, CSRF_FIELD, Sessions

DASHBOARD_URL: Final = "/_gateway"
LOGIN_URL: Final = "/_gateway/login"
LOGOUT_URL: Final = "/_gateway/logout"
ASSETS_URL: Final = "/_gateway/static/dashboard"
REFRESH_MS: Final = 3000
# The gateway's origin only; forms post nowhere else; no page frames these.
PAGE_CSP: Final = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
# A token longer than this is not the admin token: refused before it is compared.
MAX_FORM_BYTES: Final = 4096

_HEAD: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{assets}/dashboard.css">
{extra}</head>
"""

_LOGIN: Final = """<body>
<main class="narrow">
<h1>Migration dashboard</h1>
<form method="post" action="{login}">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form>
<p class="error" role="alert">{error}</p>
</main>
</body>
</html>
"""

_DASHBOARD: Final = """<body>
<header>
<h1>Migration dashboard</h1>
<form method="post" action="{logout}">
<input type="hidden" name="{csrf_field}" value="{csrf}">
<button type="submit">Log out</button>
</form>
</header>
<p id="status" class="muted">Loading...</p>
<form id="change">
<label>Route <select id="change-route" required></select></label>
<label>State <select id="change-state">
<option>legacy</option><option>shadow</option><option>canary</option>
<option>v2</option><option>retired</option>
</select></label>
<label>Share % <input id="change-share" type="number" min="0" max="100" value="100"></label>
<label>Reason <input id="change-reason" type="text" maxlength="1000" required></label>
<button type="submit">Change</button>
<span id="change-result" role="status"></span>
</form>
<table id="routes">
<thead><tr>
<th>Route</th><th>State</th><th>Announced</th><th>Served (last {window})</th>
<th>Shadow parity</th><th>Latest mismatches</th><th>Verdict</th>
</tr></thead>
<tbody></tbody>
</table>
<script src="{assets}/dashboard.js"></script>
</body>
</html>
"""

_LANDING: Final = """<body>
<main class="narrow">
<h1>Flask to FastAPI migration gateway</h1>
<ul>
{links}
</ul>
</main>
</body>
</html>
"""


def _page(title: str, body: str, *, extra: str = "", status: int = 200) -> HTMLResponse:
    head = _HEAD.format(title=escape(title), assets=ASSETS_URL, extra=extra)
    return HTMLResponse(
        head + body, status_code=status, headers={"Content-Security-Policy": PAGE_CSP}
    )


def _login_page(error: str = "", status: int = 200) -> HTMLResponse:
    return _page(
        "Log in - migration dashboard",
        _LOGIN.format(login=LOGIN_URL, error=escape(error)),
        status=status,
    )


def install_assets(app: FastAPI) -> None:
    app.mount(
        ASSETS_URL,
        StaticFiles(packages=[("gateway", "static/dashboard")]),
        name="dashboard-assets",
    )


def install_landing(
    app: FastAPI, links: list[tuple[str, str]], apis: list[tuple[str, str]]
) -> None:
    """`/`: links (label, URL) to the gateway's pages, and the two APIs' base URLs (label,
    prefix): the gateway cannot know a page under an app's prefix, so those are named."""
    items = [
        f'<li><a href="{escape(url, quote=True)}">{escape(label)}</a></li>' for label, url in links
    ]
    items += [
        f"<li>{escape(label)}: <code>{escape(prefix)}/...</code></li>" for label, prefix in apis
    ]
    body = _LANDING.format(links="\n".join(items))

    @app.get("/", include_in_schema=False)
    async def landing() -> HTMLResponse:
        return _page("Migration gateway", body)


def install_dashboard(app: FastAPI, sessions: Sessions, *, window_s: float) -> None:
    """The dashboard, its login and logout."""

    @app.get(DASHBOARD_URL, include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        csrf = sessions.csrf(request.cookies.get(COOKIE))
        if csrf is None:
            return RedirectResponse(LOGIN_URL, status_code=303)
        extra = (
            f'<meta name="csrf-token" content="{csrf}">\n'
            f'<meta name="refresh-ms" content="{REFRESH_MS}">\n'
        )
        body = _DASHBOARD.format(
            logout=LOGOUT_URL,
            csrf_field=CSRF_FIELD,
            csrf=csrf,
            window=f"{window_s:g} s",
            assets=ASSETS_URL,
        )
        return _page("Migration dashboard", body, extra=extra)

    @app.get(LOGIN_URL, include_in_schema=False)
    async def login_form(request: Request) -> Response:
        if sessions.nonce(request.cookies.get(COOKIE)) is not None:
            return RedirectResponse(DASHBOARD_URL, status_code=303)
        return _login_page()

    @app.post(LOGIN_URL, include_in_schema=False)
    async def login(request: Request) -> Response:
        token = (await _form(request)).get("token", "")
        if not token or not sessions.token_matches(token):
            return _login_page("That is not the admin token.", status=401)
        answer = RedirectResponse(DASHBOARD_URL, status_code=303)
        answer.set_cookie(
            COOKIE,
            sessions.new(),
            max_age=sessions.lifetime_s,
            path=COOKIE_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return answer

    @app.post(LOGOUT_URL, include_in_schema=False)
    async def logout(request: Request) -> Response:
        cookie = request.cookies.get(COOKIE)
        given = (await _form(request)).get(CSRF_FIELD)
        if cookie is not None and not sessions.allows_change(cookie, given):
            # Another site cannot log the operator out either.
            return _login_page("Log out from the dashboard's own button.", status=403)
        answer = RedirectResponse(LOGIN_URL, status_code=303)
        answer.delete_cookie(
            COOKIE,
            path=COOKIE_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return answer


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form; anything else, or larger, reads as empty."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    except ValueError:
        return {}
    return {name: values[0] for name, values in fields.items()}
