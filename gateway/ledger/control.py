"""The control plane of a pair with a route ledger: where its statuses live, and who may
change them.

The control database is `GATEWAY_CONTROL_DATABASE_URL`, else the one the pair names
(`AppPair.control_database_url`; the shop: its own database). A pair with a ledger and
neither is refused by `gateway serve` and `gateway routes`: statuses kept in one process's
memory would differ between workers and hosts. `create_gateway`, used directly (tests,
embedding), then serves every route as `legacy` and mounts no admin API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from gateway.dashboard.session import Sessions
from gateway.ledger.admin import admin_router
from gateway.ledger.admin_docs import admin_openapi
from gateway.ledger.canary import Canary
from gateway.ledger.model import Ledger
from gateway.ledger.readiness import ReadinessPolicy, ReadinessReport, report
from gateway.ledger.shadow import ShadowResults
from gateway.ledger.store import DatabaseStatuses
from gateway.ledger.store_migrate import upgrade_control_database
from gateway.observability.recent import RecentRequests
from gateway.pair import AppPair
from gateway.settings import GatewaySettings


class NoControlDatabase(RuntimeError):
    """A pair with a route ledger, and nowhere to keep its statuses."""


@dataclass(frozen=True)
class ControlPlane:
    statuses: DatabaseStatuses
    # The admin API, when `GATEWAY_ADMIN_TOKEN` is set, and its part of the OpenAPI document.
    router: APIRouter | None
    openapi: dict[str, Any] | None
    # The dashboard's sessions, when the admin API is served.
    sessions: Sessions | None = None


def control_database_url(settings: GatewaySettings, pair: AppPair) -> str | None:
    return settings.control_database_url or pair.control_database_url


def required_control(settings: GatewaySettings, pair: AppPair) -> tuple[Ledger, str]:
    """The pair's ledger and control database, or why there are none."""
    if pair.ledger is None:
        raise NoControlDatabase("this pair has no route ledger")
    url = control_database_url(settings, pair)
    if url is None:
        raise NoControlDatabase(
            "the pair has a route ledger but no control database: set "
            "GATEWAY_CONTROL_DATABASE_URL (the route statuses every process serves live there)"
        )
    return pair.ledger, url


def prepare_control_database(settings: GatewaySettings, pair: AppPair) -> None:
    """Before serving, once: bring the control database's tables up to date."""
    if pair.ledger is None:
        return
    _, url = required_control(settings, pair)
    upgrade_control_database(url)


def control_plane(
    settings: GatewaySettings,
    pair: AppPair,
    *,
    shadow: ShadowResults | None = None,
    canary: Canary | None = None,
    recent: RecentRequests | None = None,
) -> ControlPlane | None:
    """The statuses (and admin API) `create_gateway` serves; None without a ledger or a URL."""
    url = control_database_url(settings, pair)
    if pair.ledger is None or url is None:
        return None
    statuses = DatabaseStatuses(pair.ledger, url, poll_interval_s=settings.control_poll_interval_s)
    if settings.admin_token is None:
        return ControlPlane(statuses=statuses, router=None, openapi=None)
    token = settings.admin_token.get_secret_value()
    policy = readiness_policy(settings)
    ledger = pair.ledger

    def readiness() -> ReadinessReport:
        return report(ledger.routes, statuses, recent=recent, shadow=shadow, policy=policy)

    sessions = Sessions(token, lifetime_s=settings.dashboard_session_s)
    router = admin_router(
        statuses,
        token=token,
        shadow=shadow,
        canary=canary,
        readiness=readiness,
        sessions=sessions,
    )
    return ControlPlane(
        statuses=statuses, router=router, openapi=admin_openapi(router), sessions=sessions
    )


def readiness_policy(settings: GatewaySettings) -> ReadinessPolicy:
    return ReadinessPolicy(
        window_s=settings.ready_window_s,
        min_compared=settings.ready_min_compared,
        min_parity=settings.ready_min_parity,
        max_error_rate=settings.ready_max_error_rate,
    )
