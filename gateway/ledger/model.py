"""The route ledger's vocabulary: routes a team declares, the states they move through.

A `LedgerRoute` is written by the team, once, in code: a legacy route, its v2
counterpart and the adapter that serves the legacy URL with the v2 implementation (or
the reason the route stays legacy-only). A `RouteStatus` is what an operator changes at
run time (its state and announced dates); it lives in the control database, so that
every process and every host serves the same one. A `RouteChange` records each change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.ledger.compare import ShadowRules
from gateway.ledger.rules import Converter


class RouteState(StrEnum):
    """Who serves a legacy route.

    `legacy`: Flask (the default). `shadow`: Flask answers, v2 is called too and the two
    answers compared. `canary`: a share of the clients get v2. `v2`: the v2 code serves the
    legacy URL through the adapter, Flask is not called. `retired`: 410 with the successor.
    """

    LEGACY = "legacy"
    SHADOW = "shadow"
    CANARY = "canary"
    V2 = "v2"
    RETIRED = "retired"


# Every move is allowed except into a state that needs v2 for a route without an adapter;
# rolling back is always a move to `legacy`.
NEEDS_ADAPTER = frozenset({RouteState.SHADOW, RouteState.CANARY, RouteState.V2})
# States whose serving is built (all of them now); a state added later is refused until its
# serving is.
SERVED_STATES = frozenset(RouteState)
# A route's share, in percent: of the safe requests shadowed, of the clients a canary
# serves with v2.
FULL_SHARE = 100


class Adapter(Protocol):
    """Serves one legacy request with the v2 app, in the legacy contract.

    `scope` is the legacy request's (path under the legacy prefix), `params` the path
    parameters its rule matched. The adapter calls `v2` (in process) and sends the legacy
    client an answer the legacy app would have given.
    """

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        params: Mapping[str, Any],
        v2: ASGIApp,
    ) -> None: ...


@dataclass(frozen=True)
class LedgerRoute:
    """One legacy route and where it goes: declared by the team."""

    id: str  # e.g. "products.read"
    legacy_method: str  # "GET"
    legacy_rule: str  # Flask's rule under the legacy prefix: "/products/<int:product_id>"
    v2_method: str | None = None
    v2_path: str | None = None  # under the v2 prefix: "/products/{product_id}"
    adapter: Adapter | None = None
    # Set for a route with no v2 counterpart: why it stays on Flask.
    legacy_only: str | None = None
    # Documentation of the deprecation, sent as Link rel="deprecation" once announced.
    deprecation_docs: str | None = None
    # Where the two answers of a shadowed request may differ, and what must not be kept
    # (compare.py); None: every value compared, nothing redacted.
    shadow: ShadowRules | None = None

    def __post_init__(self) -> None:
        paired = self.v2_method is not None and self.v2_path is not None
        if paired == (self.legacy_only is not None):
            raise ValueError(f"route {self.id}: pair it with a v2 route or say why it cannot be")


@dataclass(frozen=True)
class RouteStatus:
    """What an operator sets for a route; a route never changed is `legacy`, unannounced."""

    state: RouteState = RouteState.LEGACY
    deprecation: datetime | None = None
    sunset: datetime | None = None
    share: int = FULL_SHARE


@dataclass(frozen=True)
class RouteChange:
    """One change of a route's status, as recorded."""

    route_id: str
    at: datetime
    actor: str
    reason: str
    before: RouteStatus
    after: RouteStatus


class StatusRefused(ValueError):
    """A change the ledger does not allow (no adapter, a sunset before the deprecation...)."""


class RouteStatuses(Protocol):
    """Where the statuses live. Serving reads `current()`, which costs no database trip."""

    def current(self, route_id: str) -> RouteStatus:
        """The route's status as this process last saw it."""
        ...

    async def change(
        self, route_id: str, after: RouteStatus, *, actor: str, reason: str
    ) -> RouteChange:
        """Record and apply a change (checked first; `StatusRefused` when not allowed)."""
        ...

    async def edit(
        self,
        route_id: str,
        edit: Callable[[RouteStatus], RouteStatus],
        *,
        actor: str,
        reason: str,
    ) -> RouteChange:
        """As `change`, to `edit(the status stored now)`; an edit that raises
        `StatusRefused` changes and records nothing."""
        ...

    async def history(self, route_id: str) -> list[RouteChange]:
        """The route's changes, oldest first."""
        ...


@dataclass(frozen=True)
class Ledger:
    """Every legacy route of a pair, each paired with v2 or marked legacy-only."""

    routes: tuple[LedgerRoute, ...]
    # The legacy app's own placeholder types beyond Werkzeug's (`<id:...>`), by name.
    converters: Mapping[str, Converter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = [route.id for route in self.routes]
        repeated = sorted({route_id for route_id in ids if ids.count(route_id) > 1})
        if repeated:
            raise ValueError(f"route ids used twice in the ledger: {repeated}")

    def get(self, route_id: str) -> LedgerRoute | None:
        return next((route for route in self.routes if route.id == route_id), None)
