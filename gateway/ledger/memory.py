"""Route statuses held in this process's memory: the default when no control database is
configured (every route `legacy` until changed), and what tests set directly.

A change here reaches this process only; a gateway that runs several processes keeps its
statuses in the control database instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from gateway.ledger.model import (
    FULL_SHARE,
    NEEDS_ADAPTER,
    SERVED_STATES,
    Ledger,
    RouteChange,
    RouteStatus,
    StatusRefused,
)

LEGACY = RouteStatus()


def refusal(ledger: Ledger, route_id: str, after: RouteStatus) -> str | None:
    """Why the ledger does not allow `after` for the route; None when it does."""
    route = ledger.get(route_id)
    if route is None:
        return f"no route {route_id!r} in the ledger"
    if after.state not in SERVED_STATES:
        return f"state {after.state.value!r} is not served yet"
    if after.state in NEEDS_ADAPTER and route.adapter is None:
        return f"route {route_id!r} has no adapter: it cannot be in {after.state.value!r}"
    if not 0 <= after.share <= FULL_SHARE:
        return f"the share is a percentage (0 to {FULL_SHARE}), not {after.share}"
    if after.deprecation and after.sunset and after.sunset < after.deprecation:
        return "the sunset cannot come before the deprecation"
    return None


class MemoryStatuses:
    """`RouteStatuses` in a dict: `current()` is a lookup, changes are checked and kept."""

    def __init__(self, ledger: Ledger, initial: Mapping[str, RouteStatus] | None = None) -> None:
        self.ledger = ledger
        self._statuses: dict[str, RouteStatus] = {}
        self._history: list[RouteChange] = []
        for route_id, status in (initial or {}).items():
            reason = refusal(ledger, route_id, status)
            if reason is not None:
                raise StatusRefused(reason)
            self._statuses[route_id] = status

    def current(self, route_id: str) -> RouteStatus:
        return self._statuses.get(route_id, LEGACY)

    async def change(
        self, route_id: str, after: RouteStatus, *, actor: str, reason: str
    ) -> RouteChange:
        refused = refusal(self.ledger, route_id, after)
        if refused is not None:
            raise StatusRefused(refused)
        change = RouteChange(
            route_id=route_id,
            at=datetime.now(UTC),
            actor=actor,
            reason=reason,
            before=self.current(route_id),
            after=after,
        )
        self._statuses[route_id] = after
        self._history.append(change)
        return change

    async def edit(
        self,
        route_id: str,
        edit: Callable[[RouteStatus], RouteStatus],
        *,
        actor: str,
        reason: str,
    ) -> RouteChange:
        """As `DatabaseStatuses.edit`: the change made from the status held now."""
        return await self.change(route_id, edit(self.current(route_id)), actor=actor, reason=reason)

    async def history(self, route_id: str) -> list[RouteChange]:
        return [change for change in self._history if change.route_id == route_id]
