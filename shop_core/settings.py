"""The one settings object, read once from `GATEWAY_*` variables and passed down."""

from __future__ import annotations

import enum
import hmac
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-secret-change-me-0123456789abcdef"  # noqa: S105


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", frozen=True, extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'gateway.db'}",
        description="SQLAlchemy URL; sqlite:///file or postgresql://user@host/db.",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    secret_key: str = Field(default=DEVELOPMENT_SECRET, min_length=32)
    token_issuer: str = "flask-fastapi-gateway"  # noqa: S105 - a name, not a secret
    token_lifetime_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    demo_password: str = Field(default="demo", min_length=1)
    carrier_url: str | None = None
    carrier_timeout_s: float = Field(default=2.0, gt=0, le=60)
    legacy_workers: int = Field(default=10, ge=1, le=256)
    legacy_queue_timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    log_level: Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"] = "INFO"
    cors_origins: list[str] = Field(default_factory=list)
    log_format: Literal["text", "json"] = "text"
    metrics_enabled: bool = True
    # None: /metrics on the gateway's own port; else only there, on this port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # prometheus-client's own variable (it reads it at import): set by `gateway serve
    # --workers N` for its worker processes, whose /metrics then adds up all of them.
    metrics_multiprocess_dir: Path | None = Field(
        default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR"
    )
    debug: bool = False

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case_format(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        # No secret is compared with ==, even here where no client can time the comparison.
        is_default = hmac.compare_digest(self.secret_key.encode(), DEVELOPMENT_SECRET.encode())
        if self.env is not Environment.DEVELOPMENT and is_default:
            raise ValueError(
                "GATEWAY_SECRET_KEY must be set outside development "
                "(the built-in development secret is public)"
            )
        if self.debug and self.env is not Environment.DEVELOPMENT:
            raise ValueError("GATEWAY_DEBUG is only allowed with GATEWAY_ENV=development")
        return self

    def legacy_config(self) -> dict[str, Any]:
        """The plain mapping the Flask app reads (Flask apps are configured by dict)."""
        return {
            "DATABASE_URL": self.database_url,
            "DB_POOL_SIZE": max(self.db_pool_size, self.legacy_workers),
            "SECRET_KEY": self.secret_key,
            "TOKEN_ISSUER": self.token_issuer,
            "TOKEN_LIFETIME_S": self.token_lifetime_s,
            "CARRIER_URL": self.carrier_url,
            "CARRIER_TIMEOUT_S": self.carrier_timeout_s,
            "MAX_CONTENT_LENGTH": self.max_body_bytes,
            "DEBUG": self.debug,
            "TESTING": self.env is Environment.TEST,
        }
