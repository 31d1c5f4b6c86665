"""The gateway's settings, read once from `GATEWAY_*` variables and passed down.

Only what the gateway itself needs: which apps it serves and where, the limits it holds
every client to, logs and metrics. An app pair reads its own settings (the shop's are in
`shop_core/settings.py`, under the same prefix).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX_PATTERN = r"^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$"
# What `gateway serve` serves when it is given no app of a team's: the worked example.
EXAMPLE_PAIR = "shop.pair:ShopPair"
# The shortest admin token accepted in production: 32 characters, as for the signing key.
MIN_PRODUCTION_ADMIN_TOKEN = 32


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    # Outside development, unsafe settings are refused at start (a short admin token).
    env: Literal["development", "test", "production"] = "development"

    # The apps, as import strings read the way Flask's --app reads them (gateway/loading.py).
    legacy_app: str | None = None
    v2_app: str | None = None
    legacy_prefix: str = Field(default="/legacy", pattern=PREFIX_PATTERN)
    v2_prefix: str = Field(default="/v2", pattern=PREFIX_PATTERN)
    # Functions (status, code, message) -> (content type, body) for the errors the gateway
    # makes itself on each side; RFC 9457 problem details without one.
    legacy_errors: str | None = None
    v2_errors: str | None = None
    # Readiness checks for /health: name -> import string of an async function.
    checks: dict[str, str] = Field(default_factory=dict)
    # A whole pair (apps, error formats, checks) from one import string; the default is the
    # worked example, served when neither legacy_app nor v2_app is given.
    pair: str = EXAMPLE_PAIR

    # How many processes serve: set by `gateway serve --workers N` for each of them.
    workers: int = Field(default=1, ge=1, le=256)
    legacy_workers: int = Field(default=10, ge=1, le=256)
    legacy_queue_timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Connection limits (gateway/serving.py): what a slow or greedy client may hold.
    body_timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    keep_alive_timeout_s: float = Field(default=5.0, gt=0, le=300)
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    cors_origins: list[str] = Field(default_factory=list)
    metrics_enabled: bool = True
    # None: /metrics on the gateway's own port; else only there, on this port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # prometheus-client's own variable (it reads it at import): set by `gateway serve
    # --workers N` for its worker processes, whose /metrics then adds up all of them.
    metrics_multiprocess_dir: Path | None = Field(
        default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR"
    )
    # The control plane (gateway/ledger): where the route statuses and their history live
    # (SQLAlchemy URL; None: the pair's own choice, `AppPair.control_database_url`), how
    # often each process looks for a change, and the admin API's bearer token (None: the
    # admin API answers 404).
    control_database_url: str | None = None
    control_poll_interval_s: float = Field(default=0.5, gt=0, le=1.5)
    admin_token: SecretStr | None = Field(default=None, min_length=1)
    # Routes in `shadow` (gateway/ledger/shadow.py): how many shadow calls may be pending or
    # running at once in a process, and how long after the primary answer each must be done
    # (0: none is made); requests over either are dropped and counted. How many mismatches
    # each route keeps for the admin API. How long a shadow call waits for a moment with no
    # client request in flight before it starts anyway (0: it starts at once).
    shadow_max_concurrency: int = Field(default=8, ge=1, le=1024)
    shadow_timeout_s: float = Field(default=2.0, ge=0, le=60)
    shadow_keep_mismatches: int = Field(default=50, ge=0, le=10_000)
    shadow_wait_for_idle_s: float = Field(default=0.0, ge=0, le=60)
    # Routes in `canary` (gateway/ledger/canary.py): what keeps a client on its side (the
    # token's `sub`, else its address; or always its address), the window each process
    # judges over, the requests each side needs in it before a verdict, and how much worse
    # than legacy v2 may do before the route is rolled back: its 5xx rate by more than the
    # delta (0.01: one point), its p95 by more than the ratio. Judged every interval.
    canary_sticky_by: Literal["subject", "address"] = "subject"
    canary_window_s: float = Field(default=60.0, gt=0, le=3600)
    canary_min_requests: int = Field(default=50, ge=1, le=1_000_000)
    canary_max_error_rate_delta: float = Field(default=0.01, ge=0, le=1)
    canary_max_p95_ratio: float = Field(default=1.5, ge=1, le=100)
    canary_judge_interval_s: float = Field(default=1.0, gt=0, le=60)
    # The readiness verdicts of the dashboard and `gateway routes report`
    # (gateway/ledger/readiness.py): the recent window, the shadow comparisons a cutover
    # needs and their parity (1.0: every one matched), the 5xx rate any implementation may
    # have. How long a dashboard login lasts.
    ready_window_s: float = Field(default=300.0, gt=0, le=86_400)
    ready_min_compared: int = Field(default=200, ge=0, le=100_000_000)
    ready_min_parity: float = Field(default=1.0, ge=0, le=1)
    ready_max_error_rate: float = Field(default=0.01, ge=0, le=1)
    dashboard_session_s: int = Field(default=8 * 3600, ge=60, le=7 * 86_400)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case_format(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _refuse_a_short_admin_token_in_production(self) -> GatewaySettings:
        token = self.admin_token
        if (
            self.env == "production"
            and token is not None
            and len(token.get_secret_value()) < MIN_PRODUCTION_ADMIN_TOKEN
        ):
            raise ValueError(
                f"GATEWAY_ADMIN_TOKEN must be at least {MIN_PRODUCTION_ADMIN_TOKEN} characters "
                "in production"
            )
        return self

    @property
    def serves_a_team_pair(self) -> bool:
        return self.legacy_app is not None or self.v2_app is not None
