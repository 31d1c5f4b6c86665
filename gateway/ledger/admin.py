"""The admin API of the route ledger: `/_gateway/routes`, outside both prefixes.

    GET   /_gateway/routes                 every route of the ledger and its status
    PATCH /_gateway/routes/{id}            {"state", "deprecation", "sunset", "reason"}
    GET   /_gateway/routes/{id}/history    every change: when, by whom, from, to, why
    GET   /_gateway/routes/{id}/shadow     this process's shadow results: counts, mismatches
    GET   /_gateway/routes/{id}/canary     this process's canary window per side, last verdict
    GET   /_gateway/readiness              every route's readiness summary (readiness.py)

Mounted by `create_gateway` only when the pair has a ledger and `GATEWAY_ADMIN_TOKEN` is
set (else these paths answer 404, as any unknown path). Every request must carry
`Authorization: Bearer <token>`, checked before anything of the request is read; the
readiness summary and changes also take the dashboard's session cookie together with its
CSRF token (gateway/dashboard/session.py), never the cookie alone. Errors
are RFC 9457 problem details. The routes are described under their own tag in the
gateway's OpenAPI document (`admin_openapi`).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from gateway.dashboard.session import COOKIE, CSRF_HEADER, Sessions
from gateway.ledger.admin_models import (
    GatewayCanary,
    GatewayCanaryPolicy,
    GatewayCanarySide,
    GatewayCanaryVerdict,
    GatewayMismatch,
    GatewayRoute,
    GatewayRouteChange,
    GatewayRouteHistory,
    GatewayRouteList,
    GatewayRoutePatch,
    GatewayShadow,
    GatewayShadowCounts,
)
from gateway.ledger.canary import Canary, CanaryPolicy
from gateway.ledger.model import LedgerRoute, StatusRefused
from gateway.ledger.readiness import ReadinessReport
from gateway.ledger.shadow import Counts, ShadowResults
from gateway.ledger.store import DatabaseStatuses, UnknownRoute
from gateway.responses import problem_details

ADMIN_PREFIX = "/_gateway"
ADMIN_TAG = "Gateway: route ledger"
ACTOR_HEADER = "x-gateway-actor"
# The routes the dashboard calls, which take its session cookie with its CSRF token.
SESSION_ROUTES = frozenset({"readiness_summary", "change_route"})
_VIA_DASHBOARD = "gateway.admin_via_dashboard"
_PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {"application/problem+json": {}}}
    for status, description in (
        (401, "No admin token, or not this one"),
        (404, "No such route"),
        (422, "Invalid change, or one the ledger refuses"),
    )
}

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def problem(status: int, detail: str, **extra: Any) -> Response:
    content_type, body = problem_details(status, "admin", detail)
    if extra:
        body = json.dumps({**json.loads(body), **extra}).encode()
    return Response(body, status_code=status, media_type=content_type)


def admin_router(
    statuses: DatabaseStatuses,
    *,
    token: str,
    shadow: ShadowResults | None = None,
    canary: Canary | None = None,
    readiness: Callable[[], ReadinessReport] | None = None,
    sessions: Sessions | None = None,
) -> APIRouter:
    """The admin routes over `statuses` (and the `shadow` and `canary` figures, and the
    `readiness` summary), for bearers of `token` and, on `SESSION_ROUTES`, for holders of
    a dashboard session (`sessions`) who send its CSRF token."""
    expected = token.encode()

    class AdminRoute(APIRoute):
        """Authorises first, and answers the route's errors as problem details."""

        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            takes_session = sessions is not None and self.name in SESSION_ROUTES

            async def handle(request: Request) -> Response:
                scheme, _, given = request.headers.get("authorization", "").partition(" ")
                bearer = scheme.lower() == "bearer" and hmac.compare_digest(
                    given.strip().encode(), expected
                )
                session = (
                    not bearer
                    and takes_session
                    and sessions is not None
                    and sessions.allows_change(
                        request.cookies.get(COOKIE), request.headers.get(CSRF_HEADER)
                    )
                )
                request.scope[_VIA_DASHBOARD] = session
                if not (bearer or session):
                    answer = problem(401, "This needs the gateway's admin token.")
                    answer.headers["WWW-Authenticate"] = 'Bearer realm="gateway admin"'
                    return answer
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    errors = [
                        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
                        for error in exc.errors()
                    ]
                    return problem(422, "The request is not a valid change.", errors=errors)
                except UnknownRoute as exc:
                    return problem(404, f"The ledger has no route {exc.args[0]!r}.")
                except StatusRefused as exc:
                    return problem(422, str(exc))

            return handle

    router = APIRouter(
        prefix=ADMIN_PREFIX,
        tags=[ADMIN_TAG],
        route_class=AdminRoute,
        responses=_PROBLEM_RESPONSES,
    )
    ledger = statuses.ledger

    def shadow_counts(route: LedgerRoute) -> Counts | None:
        return None if shadow is None or route.adapter is None else shadow.counts(route.id)

    @router.get("/routes")
    async def list_routes() -> GatewayRouteList:
        """Every legacy route of the ledger, its v2 counterpart and its status."""
        return GatewayRouteList(
            routes=[
                GatewayRoute.of_route(route, statuses.current(route.id), shadow_counts(route))
                for route in ledger.routes
            ]
        )

    @router.patch("/routes/{route_id}")
    async def change_route(
        route_id: str, change: GatewayRoutePatch, request: Request
    ) -> GatewayRoute:
        """Change a route's state or announced dates; the change is recorded with its
        reason and who made it (`X-Gateway-Actor`, else the client's address)."""
        recorded = await statuses.edit(
            route_id, change.apply, actor=_actor(request), reason=change.reason
        )
        route = ledger.get(route_id)
        assert route is not None  # the edit refuses an unknown route
        return GatewayRoute.of_route(route, recorded.after, shadow_counts(route))

    @router.get("/routes/{route_id}/history")
    async def route_history(route_id: str) -> GatewayRouteHistory:
        """Every change of the route, oldest first."""
        changes = await statuses.history(route_id)
        return GatewayRouteHistory(
            route_id=route_id, changes=[GatewayRouteChange.of(change) for change in changes]
        )

    @router.get("/routes/{route_id}/shadow")
    async def route_shadow(route_id: str) -> GatewayShadow:
        """What shadowing the route found in this process: how many answers matched, and
        the latest mismatches with their JSON pointers and both values."""
        route = ledger.get(route_id)
        if route is None:
            raise UnknownRoute(route_id)
        status = statuses.current(route_id)
        counts = Counts() if shadow is None else shadow.counts(route_id)
        mismatches = [] if shadow is None else shadow.mismatches(route_id)
        return GatewayShadow(
            route_id=route_id,
            state=status.state,
            share=status.share,
            counts=GatewayShadowCounts.model_validate(counts),
            mismatches=[GatewayMismatch.of(mismatch) for mismatch in mismatches],
        )

    if readiness is not None:
        make_report = readiness

        @router.get("/readiness")
        async def readiness_summary() -> ReadinessReport:
            """Every route: state, what each implementation served over the recent window,
            shadow parity, the latest mismatches, and the readiness verdict (this
            process's figures)."""
            return make_report()

    @router.get("/routes/{route_id}/canary")
    async def route_canary(route_id: str) -> GatewayCanary:
        """The route's canary in this process: each implementation's requests, 5xx rate
        and p95 over the window, the rollback policy, and the last verdict."""
        route = ledger.get(route_id)
        if route is None:
            raise UnknownRoute(route_id)
        status = statuses.current(route_id)
        policy = CanaryPolicy() if canary is None else canary.policy
        figures = None if canary is None else canary.figures(route_id)
        verdict = None if canary is None else canary.verdict(route_id)
        empty = GatewayCanarySide(requests=0, errors=0, error_rate=0.0, p95_ms=None)
        return GatewayCanary(
            route_id=route_id,
            state=status.state,
            share=status.share,
            policy=GatewayCanaryPolicy.model_validate(policy),
            legacy=empty if figures is None else GatewayCanarySide.of(figures["legacy"]),
            v2=empty if figures is None else GatewayCanarySide.of(figures["v2"]),
            verdict=None if verdict is None else GatewayCanaryVerdict.model_validate(verdict),
        )

    return router


def _actor(request: Request) -> str:
    named = request.headers.get(ACTOR_HEADER, "").strip()
    client = request.client.host if request.client is not None else "unknown"
    if request.scope.get(_VIA_DASHBOARD):
        return f"dashboard {client}"
    return f"{named} (admin-api {client})" if named else f"admin-api {client}"
