"""`create_gateway(settings, pair)`: the root ASGI app that serves a team's two apps.

The legacy (WSGI) app is mounted at `settings.legacy_prefix` through `LegacyMount`, the
v2 (ASGI) app at `settings.v2_prefix`; the v2 app's lifespan runs inside the gateway's
(a mounted app gets no lifespan events of its own). The gateway adds its own routes
(`/health`, and `/openapi.json`, `/docs`, `/redoc` when the v2 app is a FastAPI app) and
holds every request to the same limits, whichever side serves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from gateway.body_limit import BodyLimits
from gateway.dashboard.pages import (
    DASHBOARD_URL,
    install_assets,
    install_dashboard,
    install_landing,
)
from gateway.docs import DOCS_URL, install_docs
from gateway.ledger.admin_docs import with_admin
from gateway.ledger.canary import Canary, CanaryPolicy
from gateway.ledger.control import ControlPlane, control_plane
from gateway.ledger.dispatch import LedgerDispatch
from gateway.ledger.memory import MemoryStatuses
from gateway.ledger.model import Ledger, RouteStatuses
from gateway.ledger.shadow import ClientsInFlight, Shadow
from gateway.legacy_mount import LegacyMount
from gateway.mount_dispatch import mount_dispatch
from gateway.observability import METRICS_PATH, install_observability
from gateway.observability.recent import RecentRequests
from gateway.pair import AppPair, ReadinessCheck
from gateway.responses import ErrorFormats
from gateway.security_headers import SecurityHeaders
from gateway.settings import GatewaySettings

CHECK_TIMEOUT_S = 2.0
# The check /health adds when route statuses come from a control database.
ROUTE_STATUSES_CHECK = "route_statuses"


class _Gateway(FastAPI):
    errors: ErrorFormats
    v2: ASGIApp | None = None

    def build_middleware_stack(self) -> ASGIApp:
        # Built on the first request, when every route and handler is in place. The v2
        # app's requests skip the gateway's router (gateway/mount_dispatch.py): innermost
        # of the gateway's own middleware, so that its layers still wrap them.
        dispatch = (
            None
            if self.v2 is None
            else mount_dispatch(self.routes, self.v2, self.exception_handlers, self.router)
        )
        user_middleware = self.user_middleware
        if dispatch is not None:
            self.user_middleware = [*user_middleware, dispatch]
        try:
            stack = super().build_middleware_stack()
        finally:
            self.user_middleware = user_middleware
        # Outside Starlette's own error middleware, so that its 500s get the headers too.
        return SecurityHeaders(stack, errors=self.errors)


def error_formats(settings: GatewaySettings, pair: AppPair) -> ErrorFormats:
    """Which format the gateway's own errors take on each side (problem details elsewhere)."""
    return ErrorFormats(
        sides=(
            (settings.legacy_prefix, pair.legacy_errors),
            (settings.v2_prefix, pair.v2_errors),
        )
    )


def create_gateway(
    settings: GatewaySettings, pair: AppPair, *, statuses: RouteStatuses | None = None
) -> FastAPI:
    """`statuses` says which state each route of `pair.ledger` is in; without it, every
    route is `legacy` (in this process's memory) until changed."""
    errors = error_formats(settings, pair)
    legacy = (
        None
        if pair.legacy is None
        else LegacyMount(
            pair.legacy,
            workers=settings.legacy_workers,
            queue_timeout_s=settings.legacy_queue_timeout_s,
            error_format=pair.legacy_errors,
        )
    )

    # The control plane (gateway/ledger/control.py): the route statuses, kept fresh from
    # the control database for as long as the gateway serves, and the admin API.
    shadow = (
        None
        if pair.ledger is None
        else Shadow(
            max_concurrency=settings.shadow_max_concurrency,
            timeout_s=settings.shadow_timeout_s,
            keep_mismatches=settings.shadow_keep_mismatches,
            wait_for_idle_s=settings.shadow_wait_for_idle_s,
        )
    )
    canary = None if pair.ledger is None else Canary(canary_policy(settings))
    # The last minutes of each route's requests, for the readiness summary.
    recent = None if pair.ledger is None else RecentRequests()
    control = control_plane(
        settings,
        pair,
        shadow=None if shadow is None else shadow.results,
        canary=canary,
        recent=recent,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as resources:
            if control is not None:
                await resources.enter_async_context(control.statuses.polling())
            v2_router = getattr(pair.v2, "router", None)
            if v2_router is not None and hasattr(v2_router, "lifespan_context"):
                await resources.enter_async_context(v2_router.lifespan_context(pair.v2))
            if pair.lifespan is not None:
                await resources.enter_async_context(pair.lifespan())
            if legacy is not None:
                # First on the way out: requests in flight finish before the pair closes
                # what they use.
                resources.push_async_callback(asyncio.to_thread, legacy.shutdown)
            if shadow is not None:
                # Before the apps close what the shadow calls in flight are using.
                resources.push_async_callback(shadow.aclose)
            dispatch = app.state.ledger_dispatch
            if canary is not None and isinstance(dispatch, LedgerDispatch):
                # Judged against the store the dispatch serves (read each round).
                route_ids = [route.id for route in dispatch.ledger.routes if route.adapter]
                await resources.enter_async_context(
                    canary.judging(lambda: dispatch.statuses, route_ids)
                )
            yield

    app = _Gateway(
        title="Flask to FastAPI migration gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.errors = errors
    app.v2 = pair.v2
    app.state.legacy_mount = legacy
    app.state.route_statuses = None if control is None else control.statuses
    if control is not None and control.router is not None:
        app.include_router(control.router)
    if control is not None and control.sessions is not None:
        install_dashboard(app, control.sessions, window_s=settings.ready_window_s)
    install_assets(app)
    install_landing(
        app,
        *_landing_links(
            settings, pair, dashboard=control is not None and control.sessions is not None
        ),
    )
    _install_error_handlers(app, errors)
    app.state.ledger_dispatch = None
    if legacy is not None and pair.ledger is not None:
        dispatch = LedgerDispatch(
            legacy,
            ledger=pair.ledger,
            statuses=statuses or _served_statuses(control, pair.ledger),
            v2=pair.v2,
            legacy_prefix=settings.legacy_prefix,
            v2_prefix=settings.v2_prefix,
            legacy_errors=pair.legacy_errors,
            shadow=shadow,
            canary=canary,
        )
        app.state.ledger_dispatch = dispatch
        app.mount(settings.legacy_prefix, dispatch)
    elif legacy is not None:
        app.mount(settings.legacy_prefix, legacy)
    if pair.v2 is not None:
        app.mount(settings.v2_prefix, pair.v2)
    checks = dict(pair.checks)
    if control is not None:
        checks[ROUTE_STATUSES_CHECK] = control.statuses.loaded
    _install_health(app, settings, pair, checks, legacy)
    if isinstance(pair.v2, FastAPI):
        _install_v2_docs(
            app, pair.v2, settings.v2_prefix, admin=None if control is None else control.openapi
        )
    observability = install_observability(
        app,
        stacks={settings.legacy_prefix: "legacy", settings.v2_prefix: "v2"},
        metrics_enabled=settings.metrics_enabled,
        metrics_path=METRICS_PATH if settings.metrics_port is None else None,
        multiprocess_dir=settings.metrics_multiprocess_dir,
        legacy_mount=legacy,
        recent=recent,
        more_metrics=pair.metrics,
    )
    app.state.shadow = shadow
    app.state.canary = canary
    if shadow is not None and observability.metrics is not None:
        shadow.observer = observability.metrics.shadow_compared

    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        errors=errors,
    )
    if shadow is not None and shadow.wait_for_idle_s > 0:
        # Shadow calls wait for a moment with no client request in flight (shadow.py). Off
        # by default: then no request pays for counting them.
        app.add_middleware(ClientsInFlight, shadow=shadow)
    if settings.cors_origins:
        # Outside the body limit, so that a browser can read the 413 too. No credentials:
        # tokens travel in the Authorization header, never in cookies.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            # ETag out, If-Match in: browser clients can make their changes conditional too.
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match"],
            expose_headers=["Location", "ETag"],
            max_age=600,
        )
    return app


def _install_error_handlers(app: FastAPI, errors: ErrorFormats) -> None:
    """The gateway's own paths answer errors in the default format; the apps their own."""

    def render(request: Request, status: int, code: str, message: str) -> Response:
        content_type, body = errors.render(request.url.path, status, code, message)
        return Response(body, status_code=status, media_type=content_type.decode("latin-1"))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        response = render(request, exc.status_code, "http_error", str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    async def internal_error(request: Request, exc: Exception) -> Response:
        # uvicorn logs the exception, which Starlette raises again after this answer.
        return render(request, 500, "internal_error", "An internal error occurred.")

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)


async def _run_check(check: ReadinessCheck) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return await check() is not False
    except Exception:
        return False


def _install_health(
    app: FastAPI,
    settings: GatewaySettings,
    pair: AppPair,
    checks: Mapping[str, ReadinessCheck],
    legacy: LegacyMount | None,
) -> None:
    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        """The gateway, each side, and every registered check (503 when one fails).

        A saturated legacy pool is reported, not a failure: it answers again as soon as a
        thread frees, and a load balancer that took the process out would only move the
        queue elsewhere.
        """
        names = list(checks)
        results = await asyncio.gather(*(_run_check(checks[name]) for name in names))
        stacks: dict[str, Any] = {}
        if legacy is not None:
            stacks["legacy"] = {
                "prefix": settings.legacy_prefix,
                "pool": {
                    "threads": legacy.workers,
                    "busy": legacy.busy,
                    "waiting": legacy.waiting,
                    "saturated": legacy.busy >= legacy.workers,
                },
            }
        if pair.v2 is not None:
            stacks["v2"] = {"prefix": settings.v2_prefix}
        ready = all(results)
        body = {
            "status": "ok" if ready else "unavailable",
            **{
                name: "ok" if ok else "unavailable" for name, ok in zip(names, results, strict=True)
            },
            "stacks": stacks,
        }
        return JSONResponse(body, status_code=200 if ready else 503)


def _install_v2_docs(
    app: FastAPI, v2: FastAPI, prefix: str, *, admin: dict[str, Any] | None = None
) -> None:
    """The gateway's documentation is the v2 API's: that is what new clients integrate with
    (and the admin API's, under its own tag, when it is served)."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        document = v2.openapi()
        if "servers" not in document:
            # Paths in the document are the app's own; clients call them under the prefix.
            document = {**document, "servers": [{"url": prefix}]}
        if admin is not None:
            document = with_admin(document, admin)
        return JSONResponse(document)

    install_docs(app, openapi_url="/openapi.json", title=v2.title)


def canary_policy(settings: GatewaySettings) -> CanaryPolicy:
    return CanaryPolicy(
        sticky_by=settings.canary_sticky_by,
        window_s=settings.canary_window_s,
        min_requests=settings.canary_min_requests,
        max_error_rate_delta=settings.canary_max_error_rate_delta,
        max_p95_ratio=settings.canary_max_p95_ratio,
        judge_interval_s=settings.canary_judge_interval_s,
    )


def _landing_links(
    settings: GatewaySettings, pair: AppPair, *, dashboard: bool
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The landing page's links, and the APIs it names with their prefixes."""
    links = [("Migration dashboard", DASHBOARD_URL)] if dashboard else []
    if isinstance(pair.v2, FastAPI):
        links.append(("The v2 API's documentation", DOCS_URL))
    links.append(("Health", "/health"))
    apis = []
    if pair.v2 is not None:
        apis.append(("The v2 API", settings.v2_prefix))
    if pair.legacy is not None:
        apis.append(("The legacy API, as its existing clients call it", settings.legacy_prefix))
    return links, apis


def _served_statuses(control: ControlPlane | None, ledger: Ledger) -> RouteStatuses:
    # The control database's statuses when there is one; else every route stays legacy.
    return control.statuses if control is not None else MemoryStatuses(ledger)
