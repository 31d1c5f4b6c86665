"""The interactive API docs, Swagger UI at `/docs` and ReDoc at `/redoc`, served offline.

FastAPI's own pages load both from a CDN and start Swagger UI with an inline script: on a
machine without internet access `/docs` is a blank page, and a Content-Security-Policy
strict enough to be worth having refuses the inline script. Here the bundles come from an
installed package (`fastapi-offline` ships Swagger UI, ReDoc and a favicon as package data;
only those files are used), the Swagger UI set-up and the OAuth2 redirect are static
scripts of the gateway's own, and each page carries a policy that lets it load from the
gateway's own origin and nowhere else.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from typing import Final

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_URL: Final = "/docs"
OAUTH2_REDIRECT_URL: Final = "/docs/oauth2-redirect"
REDOC_URL: Final = "/redoc"
# Under the gateway's own prefix, so that no path a mounted app might own is taken.
ASSETS_URL: Final = "/_gateway/static/docs"
# Looked up in this order: the gateway's own scripts, then the installed bundles.
ASSET_PACKAGES: Final = (("gateway", "static/docs"), ("fastapi_offline", "static"))
# What the pages below load, and the package each file comes from.
ASSETS: Final = {
    "swagger-init.js": "gateway",
    "swagger-oauth2-redirect.js": "gateway",
    "redoc.css": "gateway",
    "swagger-ui-bundle.js": "fastapi_offline",
    "swagger-ui.css": "fastapi_offline",
    "redoc.standalone.js": "fastapi_offline",
    "favicon.png": "fastapi_offline",
}

# Everything from the gateway's origin only, and the page in no one else's frame. Each
# page allows only what it was seen to need in Chromium (tests/gateway/test_docs_offline.py):
# both UIs draw icons from data: URLs (and the favicon is an image from 'self'); ReDoc
# injects <style> elements (styled-components) and builds its search index in a worker
# made from a blob: URL. Swagger UI sets its styles through the DOM, which CSP allows.
_BASE_POLICY: Final = "default-src 'self'; base-uri 'none'; frame-ancestors 'none'"
SWAGGER_UI_CSP: Final = f"{_BASE_POLICY}; img-src 'self' data:"
REDOC_CSP: Final = (
    f"{_BASE_POLICY}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src blob:"
)
OAUTH2_REDIRECT_CSP: Final = _BASE_POLICY

_SWAGGER_UI_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title} - Swagger UI</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}" data-oauth2-redirect-url="{redirect_url}">
</div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""

_REDOC_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - ReDoc</title>
<link rel="stylesheet" href="{assets}/redoc.css">
<link rel="icon" type="image/png" href="{assets}/favicon.png">
</head>
<body>
<noscript>ReDoc needs JavaScript to show the documentation.</noscript>
<redoc spec-url="{openapi_url}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""

_OAUTH2_REDIRECT_PAGE: Final = """<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="utf-8">
<title>Swagger UI: OAuth2 Redirect</title>
</head>
<body>
<script src="{assets}/swagger-oauth2-redirect.js"></script>
</body>
</html>
"""


def _render(template: str, **values: str) -> str:
    escaped = {name: escape(value, quote=True) for name, value in values.items()}
    return template.format(assets=escape(ASSETS_URL, quote=True), **escaped)


def _check_assets() -> None:
    """Fail at start-up, not with a blank page later, when a file the pages load is missing.

    A release of the bundles' package that moves or renames a file is caught here.
    """
    folders = dict(ASSET_PACKAGES)
    for name, package in ASSETS.items():
        try:
            present = files(package).joinpath(folders[package], name).is_file()
        except ModuleNotFoundError:
            present = False
        if not present:
            raise RuntimeError(
                f"The docs need {name} from the package {package!r}: install the gateway "
                "with its dependencies (fastapi-offline ships Swagger UI and ReDoc)."
            )


def install_docs(app: FastAPI, *, openapi_url: str, title: str) -> None:
    """Serve Swagger UI and ReDoc for the OpenAPI document at `openapi_url`, and their assets.

    Fails at once (`RuntimeError`) when the package that ships the bundles is missing,
    rather than with a blank page in a browser later.
    """
    _check_assets()
    # `packages` finds each directory through the import system, wherever it is installed.
    app.mount(ASSETS_URL, StaticFiles(packages=list(ASSET_PACKAGES)), name="docs-assets")

    # Rendered once; each answer is a new response, so no middleware sees a shared header list.
    swagger_ui = _render(
        _SWAGGER_UI_PAGE, title=title, openapi_url=openapi_url, redirect_url=OAUTH2_REDIRECT_URL
    )
    redoc = _render(_REDOC_PAGE, title=title, openapi_url=openapi_url)
    oauth2_redirect = _render(_OAUTH2_REDIRECT_PAGE)

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui_page() -> HTMLResponse:
        return HTMLResponse(swagger_ui, headers={"Content-Security-Policy": SWAGGER_UI_CSP})

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return HTMLResponse(
            oauth2_redirect, headers={"Content-Security-Policy": OAUTH2_REDIRECT_CSP}
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc, headers={"Content-Security-Policy": REDOC_CSP})
