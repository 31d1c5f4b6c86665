"""What the admin API reads and answers (`gateway/ledger/admin.py`)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.ledger.model import LedgerRoute, RouteChange, RouteState, RouteStatus

MAX_REASON_CHARS = 1000


class LegacySide(BaseModel):
    method: str
    rule: str = Field(description="Flask's rule, under the legacy prefix")


class V2Side(BaseModel):
    method: str
    path: str = Field(description="the path under the v2 prefix")


class StatusOut(BaseModel):
    state: RouteState
    deprecation: datetime | None
    sunset: datetime | None

    @classmethod
    def of(cls, status: RouteStatus) -> StatusOut:
        return cls(state=status.state, deprecation=status.deprecation, sunset=status.sunset)


class GatewayRoute(StatusOut):
    """A route of the ledger and its status, as this process serves it."""

    id: str
    legacy: LegacySide
    v2: V2Side | None
    adapter: bool = Field(description="whether v2 can serve the legacy URL")
    legacy_only: str | None = Field(description="why the route has no v2 counterpart")

    @classmethod
    def of_route(cls, route: LedgerRoute, status: RouteStatus) -> GatewayRoute:
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
            before=StatusOut.of(change.before),
            after=StatusOut.of(change.after),
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
        )
