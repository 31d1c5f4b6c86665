"""What the admin API reads and answers (`gateway/ledger/admin.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.ledger.canary import SideFigures
from gateway.ledger.model import FULL_SHARE, LedgerRoute, RouteChange, RouteState, RouteStatus
from gateway.ledger.shadow import Counts, Mismatch

MAX_REASON_CHARS = 1000
SHARE_DESCRIPTION = (
    "percent: of the safe requests shadowed (`shadow`), of the clients served by v2 (`canary`)"
)


class _FromAttributes(BaseModel):
    """Read from one of the ledger's dataclasses, field by field (`model_validate(obj)`)."""

    model_config = ConfigDict(from_attributes=True)


class LegacySide(BaseModel):
    method: str
    rule: str = Field(description="Flask's rule, under the legacy prefix")


class V2Side(BaseModel):
    method: str
    path: str = Field(description="the path under the v2 prefix")


class StatusOut(_FromAttributes):
    state: RouteState
    deprecation: datetime | None
    sunset: datetime | None
    share: int = Field(description=SHARE_DESCRIPTION)


class GatewayShadowCounts(_FromAttributes):
    """This process's shadow results for a route (each process counts its own)."""

    compared: int = Field(description="answers compared: matched + mismatched")
    matched: int
    mismatched: int
    errored: int = Field(description="shadow calls that failed")
    dropped: int = Field(description="not shadowed: over the concurrency or time budget")


class GatewayMismatch(BaseModel):
    at: datetime
    request_id: str
    method: str
    path: str
    differences: list[dict[str, Any]] = Field(
        description="part, pointer, primary and shadow values (sensitive fields redacted)"
    )

    @classmethod
    def of(cls, mismatch: Mismatch) -> GatewayMismatch:
        return cls(
            at=mismatch.at,
            request_id=mismatch.request_id,
            method=mismatch.method,
            path=mismatch.path,
            differences=[difference.as_json() for difference in mismatch.differences],
        )


class GatewayShadow(BaseModel):
    route_id: str
    state: RouteState
    share: int
    counts: GatewayShadowCounts
    mismatches: list[GatewayMismatch] = Field(description="the latest first")


class GatewayCanarySide(BaseModel):
    """One implementation's outcomes on the route over the window, in this process."""

    requests: int
    errors: int = Field(description="5xx answers")
    error_rate: float = Field(description="errors / requests, 0 to 1")
    p95_ms: float | None

    @classmethod
    def of(cls, figures: SideFigures) -> GatewayCanarySide:
        return cls(
            requests=figures.requests,
            errors=figures.errors,
            error_rate=round(figures.error_rate, 6),
            p95_ms=None if figures.p95_s is None else round(figures.p95_s * 1000, 3),
        )


class GatewayCanaryPolicy(_FromAttributes):
    sticky_by: str
    window_s: float
    min_requests: int = Field(description="per side, before a verdict")
    max_error_rate_delta: float
    max_p95_ratio: float


class GatewayCanaryVerdict(_FromAttributes):
    at: datetime
    outcome: str = Field(
        description="too few requests, healthy, rolled back, or no longer in canary"
    )
    reason: str


class GatewayCanary(BaseModel):
    """The canary of a route as this process sees it (each process judges its own)."""

    route_id: str
    state: RouteState
    share: int
    policy: GatewayCanaryPolicy
    legacy: GatewayCanarySide
    v2: GatewayCanarySide
    verdict: GatewayCanaryVerdict | None = Field(description="the last judgement")


class GatewayRoute(StatusOut):
    """A route of the ledger and its status, as this process serves it."""

    id: str
    legacy: LegacySide
    v2: V2Side | None
    adapter: bool = Field(description="whether v2 can serve the legacy URL")
    legacy_only: str | None = Field(description="why the route has no v2 counterpart")
    shadow: GatewayShadowCounts | None = Field(
        default=None, description="this process's shadow results (routes with an adapter)"
    )

    @classmethod
    def of_route(
        cls, route: LedgerRoute, status: RouteStatus, shadow: Counts | None = None
    ) -> GatewayRoute:
        v2 = (
            V2Side(method=route.v2_method, path=route.v2_path)
            if route.v2_method is not None and route.v2_path is not None
            else None
        )
        return cls(
            id=route.id,
            legacy=LegacySide(method=route.legacy_method, rule=route.legacy_rule),
            v2=v2,
            adapter=route.adapter is not None,
            legacy_only=route.legacy_only,
            state=status.state,
            deprecation=status.deprecation,
            sunset=status.sunset,
            share=status.share,
            shadow=None if shadow is None else GatewayShadowCounts.model_validate(shadow),
        )


class GatewayRouteList(BaseModel):
    routes: list[GatewayRoute]


class GatewayRouteChange(BaseModel):
    at: datetime
    actor: str
    reason: str
    before: StatusOut
    after: StatusOut

    @classmethod
    def of(cls, change: RouteChange) -> GatewayRouteChange:
        return cls(
            at=change.at,
            actor=change.actor,
            reason=change.reason,
            before=StatusOut.model_validate(change.before),
            after=StatusOut.model_validate(change.after),
        )


class GatewayRouteHistory(BaseModel):
    route_id: str
    changes: list[GatewayRouteChange]


class GatewayRoutePatch(BaseModel):
    """Any of the fields; those left out keep their value, a null date clears it."""

    model_config = ConfigDict(extra="forbid")

    state: RouteState = RouteState.LEGACY
    deprecation: datetime | None = Field(
        default=None, description="ISO-8601; a date or a time without a zone is UTC"
    )
    sunset: datetime | None = Field(default=None, description="ISO-8601, not before deprecation")
    share: int = Field(default=FULL_SHARE, ge=0, le=FULL_SHARE, description=SHARE_DESCRIPTION)
    reason: str = Field(default="", max_length=MAX_REASON_CHARS)

    @field_validator("deprecation", "sunset")
    @classmethod
    def _utc_when_no_zone(cls, value: datetime | None) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)

    def apply(self, before: RouteStatus) -> RouteStatus:
        given = self.model_fields_set
        return RouteStatus(
            state=self.state if "state" in given else before.state,
            deprecation=self.deprecation if "deprecation" in given else before.deprecation,
            sunset=self.sunset if "sunset" in given else before.sunset,
            share=self.share if "share" in given else before.share,
        )
