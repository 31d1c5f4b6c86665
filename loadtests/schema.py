"""The comparison's data as types: what `comparison.json` holds, and what Locust hands over.

Every report (JSON, Markdown, HTML) is written from these models, and `--report-only`
reads them back. Schema version 2 (version 1 had no `schema_version`): every key is always
there, null where it does not apply (a ramp's `achieved_rps`, a CPU figure that could not
be measured) where version 1 left it out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

SCHEMA_VERSION = 2


class OpStats(BaseModel):
    """One operation's numbers in one arm (times in milliseconds)."""

    requests: int
    failures: int
    failure_ratio: float
    rps: float
    avg: float
    p50: float
    p95: float
    p99: float
    max: float


class Ratios(BaseModel):
    """Candidate over current, per figure (None where the current one is 0)."""

    rps: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class TotalRatios(Ratios):
    cpu_per_request: float | None = None
    server_rss_peak: float | None = None


class Warmup(BaseModel):
    """What the warm-up lasted and left out; `ended_at` is when the statistics were reset."""

    ended_at: float
    seconds: float
    requests: int
    failures: int
    cut_short: str | None = None


class LocustNotes(BaseModel):
    """What the Locust master writes at the end (`--notes-file`): nothing to parse in its log."""

    warmup: Warmup | None = None
    loadgen_warnings: list[str] = Field(default_factory=list)


class CpuUsage(BaseModel):
    """Busy shares (0-1) of the cores over an arm; the server's own share where measured."""

    server_cores: list[int]
    server_cores_busy: float
    loadgen_cores_busy: float
    server_itself: float | None = None
    others_on_server_cores: float | None = None
    server_cpu_s: float | None = None
    locust_cpu_s: float | None = None
    locust_core_share: float | None = None


class ServerRss(BaseModel):
    """The server's resident memory over an arm: its peak, over how many processes."""

    peak_mib: float
    processes: int
    samples: int
    every_s: float


class Failure(BaseModel):
    method: str
    name: str
    error: str
    occurrences: int


class Step(BaseModel):
    """One user-count step of a ramp: the rate it sustained and its rolling p95."""

    users: int
    rps: float
    p95: float | None
    s: float


class ShadowMismatch(BaseModel):
    """A shadowed request whose two answers differed, as the gateway kept it."""

    request_id: str
    method: str
    path: str
    differences: list[dict[str, Any]]


class ShadowRoute(BaseModel):
    """A route's shadow results in the `legacy-shadow` arm (the gateway's admin API)."""

    compared: int
    matched: int
    mismatched: int
    errored: int
    dropped: int
    mismatches: list[ShadowMismatch] = Field(default_factory=list)


class ArmSummary(BaseModel):
    """What the report says about an arm as a whole, including whether its load was valid."""

    host: str
    prefix: str
    files: dict[str, str]
    locust_exit_code: int
    errors: list[Failure] = Field(default_factory=list)
    warmup: Warmup | None = None
    cpu: CpuUsage | None = None
    cpu_ms_per_request: float | None = None
    server_rss: ServerRss | None = None
    # The rate mode's load, or the ramp's.
    offered_rps: float | None = None
    achieved_rps: float | None = None
    steps: list[Step] = Field(default_factory=list)
    peak_rps: float | None = None
    peak_users: int | None = None
    loadgen_bottleneck: list[str] = Field(default_factory=list)
    server_log: str | None = None
    server_error_lines: int | None = None
    # The legacy-shadow arm: each shadowed route's results, by route id.
    shadow: dict[str, ShadowRoute] | None = None


class Thresholds(BaseModel):
    max_p95_ratio: float = 1.0
    # Locust rounds times under 100 ms to whole milliseconds: a 1 ms step is not a regression.
    p95_slack_ms: float = 2.0
    max_failure_ratio: float = 0.001
    min_rps_ratio: float = 1.0
    # Fewer requests than this in an arm (logins, set-up lists) say nothing about latency.
    min_requests: int = 50
    # An arm that got less than this share of the offered rate did not get the same load.
    min_achieved_share: float = 0.95
    # The legacy-shadow arm's p95 may be at most legacy's x this (+ the slack).
    max_shadow_p95_ratio: float = 1.10


class Settings(BaseModel):
    """The run's settings: those the reports read, and whatever else the runner recorded."""

    model_config = ConfigDict(extra="allow")

    mode: str
    users: int
    spawn_rate: float
    run_time_s: int
    warmup_max_s: int
    rate: float
    user_rps: float
    ramp_steps: int
    processes: int
    tags: list[str]
    servers: str
    pinning: str
    pinned: bool = False
    started_at: str
    machine: str
    thresholds: Thresholds = Field(default_factory=Thresholds)


class Operation(BaseModel):
    """One operation across the arms; each arm's numbers sit at the top level, by arm name."""

    name: str
    stats: dict[str, OpStats | None] = Field(exclude=True)
    ratios: dict[str, Ratios | None]
    verdict: str
    reasons: list[str]

    @model_serializer(mode="wrap")
    def _arms_at_top_level(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        stats = {arm: s.model_dump() if s else None for arm, s in self.stats.items()}
        return {"name": data.pop("name"), **stats, **data}


HISTORY_COLUMNS = ["t_s", "epoch", "users", "rps", "p50", "p95", "p99"]
HistoryRow = list[float | None]


class Comparison(BaseModel):
    schema_version: int = SCHEMA_VERSION
    mode: str
    mode_description: str
    verdict: str
    failed_checks: list[str]
    settings: Settings
    arms: dict[str, ArmSummary]
    totals: dict[str, OpStats]
    total_ratios: dict[str, TotalRatios | None]
    operations: list[Operation]
    history: dict[str, list[HistoryRow]]
    history_columns: list[str] = Field(default_factory=lambda: list(HISTORY_COLUMNS))
