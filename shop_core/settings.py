"""The shop's settings, read once from `GATEWAY_*` variables and passed down.

The gateway's own (limits, logs, which apps) are in `gateway/settings.py`; the shop's
composition root (`shop/settings.py`) reads both at once.
"""

from __future__ import annotations

import enum
import hmac
import secrets
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Earlier versions ran on this key when none was set, and published it: a token signed
# with it is anyone's, so it is refused everywhere, development included.
PUBLISHED_DEVELOPMENT_SECRET = "development-secret-change-me-0123456789abcdef"  # noqa: S105
DEMO_PASSWORD = "demo"  # noqa: S105 - public by design; seeding is for development only


def _random_secret() -> SecretStr:
    # Development without GATEWAY_SECRET_KEY: a key nobody else knows, new for each
    # `gateway serve` (which hands it to its worker processes), so tokens die with it.
    return SecretStr(secrets.token_urlsafe(32))


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    # hide_input_in_errors: a refused value is never printed back, and a check of the
    # whole object would otherwise print every setting, the secret and passwords among them.
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", frozen=True, extra="ignore", hide_input_in_errors=True
    )

    env: Environment = Environment.DEVELOPMENT
    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'gateway.db'}",
        description="SQLAlchemy URL; sqlite:///file or postgresql://user@host/db.",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    secret_key: SecretStr = Field(default_factory=_random_secret, min_length=32)
    token_issuer: str = "flask-fastapi-gateway"  # noqa: S105 - a name, not a secret
    token_lifetime_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    demo_password: SecretStr = Field(default=SecretStr(DEMO_PASSWORD), min_length=1)
    # How long a token's user (whether it still exists, and its scopes) is remembered:
    # a deleted user's tokens stop working at most this long after. 0 looks up every time.
    user_cache_ttl_s: float = Field(default=5.0, ge=0, le=300)
    carrier_url: str | None = None
    carrier_timeout_s: float = Field(default=2.0, gt=0, le=60)
    # v2's calls to the carrier (v2_fastapi/throttle.py), for one `gateway serve`: with
    # `--workers N` each process takes 1/N of the rate, the burst and the concurrency.
    # None: no rate limit. The burst is how many calls may go at once after a quiet spell.
    carrier_max_rps: float | None = Field(default=None, gt=0, le=100_000)
    carrier_burst: int = Field(default=10, ge=1, le=100_000)
    # As many as the client's connection pool holds (v2_fastapi/carrier.py).
    carrier_max_concurrency: int = Field(default=200, ge=1, le=10_000)
    # The longest a quote waits for its turn under those limits; None: as long as its
    # deadline allows. Under a sustained overload every admitted quote waits this long.
    carrier_max_wait_s: float | None = Field(default=None, ge=0, le=60)
    # Transient failures (refused or reset connection, 502, 503, 504, 429 with Retry-After)
    # are tried again at most this many times, within GATEWAY_CARRIER_TIMEOUT_S.
    carrier_retries: int = Field(default=2, ge=0, le=10)
    # How many processes serve: `gateway serve --workers N` sets it for its processes.
    workers: int = Field(default=1, ge=1, le=256)
    # Login throttling (shop_core/login_throttle.py): this many failed logins within the
    # window, for one username or from one client address, and further logins get 429.
    login_max_failures_per_username: int = Field(default=5, ge=1, le=10_000)
    login_max_failures_per_address: int = Field(default=20, ge=1, le=10_000)
    login_failure_window_s: int = Field(default=900, ge=1, le=24 * 3600)
    # argon2 takes 64 MiB and tens of milliseconds of CPU per check: at most this many at
    # once in a process, both stacks together; a login that waits longer for one gets 503.
    password_hash_concurrency: int = Field(default=4, ge=1, le=64)
    password_hash_wait_s: float = Field(default=1.0, gt=0, le=30)
    debug: bool = False

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        # No secret is compared with ==, even here where no client can time the comparison.
        if hmac.compare_digest(
            self.secret_key.get_secret_value().encode(), PUBLISHED_DEVELOPMENT_SECRET.encode()
        ):
            raise ValueError(
                "GATEWAY_SECRET_KEY is the development secret earlier versions published: "
                "choose another one"
            )
        if self.env is not Environment.DEVELOPMENT and "secret_key" not in self.model_fields_set:
            # A random key per process would refuse the tokens of every other process.
            raise ValueError("GATEWAY_SECRET_KEY must be set outside development")
        if self.debug and self.env is not Environment.DEVELOPMENT:
            raise ValueError("GATEWAY_DEBUG is only allowed with GATEWAY_ENV=development")
        return self

    def legacy_config(self, *, threads: int, max_body_bytes: int) -> dict[str, Any]:
        """The plain mapping the Flask app reads (Flask apps are configured by dict).

        `threads`: how many requests the app serves at once (the gateway's pool), each of
        which may hold a database connection; `max_body_bytes`: the gateway's body limit.
        """
        return {
            "DATABASE_URL": self.database_url,
            "DB_POOL_SIZE": max(self.db_pool_size, threads),
            "SECRET_KEY": self.secret_key.get_secret_value(),
            "TOKEN_ISSUER": self.token_issuer,
            "TOKEN_LIFETIME_S": self.token_lifetime_s,
            "USER_CACHE_TTL_S": self.user_cache_ttl_s,
            "CARRIER_URL": self.carrier_url,
            "CARRIER_TIMEOUT_S": self.carrier_timeout_s,
            "MAX_CONTENT_LENGTH": max_body_bytes,
            "LOGIN_MAX_FAILURES_PER_USERNAME": self.login_max_failures_per_username,
            "LOGIN_MAX_FAILURES_PER_ADDRESS": self.login_max_failures_per_address,
            "LOGIN_FAILURE_WINDOW_S": self.login_failure_window_s,
            "PASSWORD_HASH_CONCURRENCY": self.password_hash_concurrency,
            "PASSWORD_HASH_WAIT_S": self.password_hash_wait_s,
            "DEBUG": self.debug,
            "TESTING": self.env is Environment.TEST,
        }
