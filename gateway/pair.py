"""What a team hands the gateway: its two apps, how the gateway's own errors look on each
side, and what /health must check.

`AppPair` is the pair itself. A `PairSource` makes one in every process that serves (with
`--workers N`, in each worker) and may prepare what the pair needs, once, before serving
(the worked example migrates its database and starts its carrier stand-in there).
`gateway serve --legacy ... --v2 ...` builds an `ImportedPair` from import strings;
`GATEWAY_PAIR` names any other source, a class called with the gateway's settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol
from wsgiref.types import WSGIApplication

from starlette.types import ASGIApp

from gateway.ledger.model import Ledger
from gateway.loading import ImportStringError, load
from gateway.observability.metrics import MetricsSource
from gateway.responses import ErrorFormat, problem_details
from gateway.settings import GatewaySettings

# A readiness check: False, or an exception, means "not ready" (/health answers 503).
ReadinessCheck = Callable[[], Awaitable[bool | None]]
# Names /health uses itself.
RESERVED_CHECK_NAMES = frozenset({"status", "stacks", "route_statuses"})


@dataclass(frozen=True)
class AppPair:
    legacy: WSGIApplication | None = None
    v2: ASGIApp | None = None
    legacy_errors: ErrorFormat = problem_details
    v2_errors: ErrorFormat = problem_details
    checks: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    # What the pair opens for as long as the gateway serves (engines, clients), besides
    # the v2 app's own lifespan, which the gateway runs itself.
    lifespan: Callable[[], AbstractAsyncContextManager[None]] | None = None
    # The legacy routes and their v2 counterparts (gateway/ledger); None: no cutover.
    ledger: Ledger | None = None
    # Where the ledger's route statuses live when GATEWAY_CONTROL_DATABASE_URL is not set
    # (a SQLAlchemy URL; the shop: its own database).
    control_database_url: str | None = None
    # The apps' own Prometheus metrics (a prometheus-client `CollectorRegistry`, or anything
    # with its `collect()`), shown on /metrics beside the gateway's.
    metrics: Sequence[MetricsSource] = ()

    def __post_init__(self) -> None:
        if self.legacy is None and self.v2 is None:
            raise ValueError("a pair needs a legacy app, a v2 app, or both")
        reserved = RESERVED_CHECK_NAMES & set(self.checks)
        if reserved:
            raise ValueError(f"check names {sorted(reserved)} are taken by /health itself")


class PairSource(Protocol):
    def prepare(self) -> AbstractContextManager[None]:
        """Run once by `gateway serve` before it serves, in its own process."""
        ...

    def build(self) -> AppPair:
        """The pair, made in every process that serves it."""
        ...


class ImportedPair:
    """A pair from import strings: `--legacy`, `--v2`, `--legacy-errors`, `--v2-errors`,
    `--check` (or their `GATEWAY_*` variables). Nothing to prepare."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings

    def prepare(self) -> AbstractContextManager[None]:
        return nullcontext()

    def build(self) -> AppPair:
        settings = self.settings
        return AppPair(
            legacy=_load_optional(settings.legacy_app),
            v2=_load_optional(settings.v2_app),
            legacy_errors=_load_optional(settings.legacy_errors, factory=False) or problem_details,
            v2_errors=_load_optional(settings.v2_errors, factory=False) or problem_details,
            checks={
                name: load(spec, call_factories=False) for name, spec in settings.checks.items()
            },
        )


def _load_optional(spec: str | None, *, factory: bool = True) -> Any:
    return None if spec is None else load(spec, call_factories=factory)


def pair_source(settings: GatewaySettings) -> PairSource:
    """The source `gateway serve` uses: the team's apps when it names any, else `settings.pair`."""
    if settings.serves_a_team_pair:
        return ImportedPair(settings)
    source_class = load(settings.pair, call_factories=False)
    if not callable(source_class):
        raise ImportStringError(f"{settings.pair!r} does not name a pair source class")
    source: PairSource = source_class(settings)
    return source
