"""Login throttling: failed logins per username and per client address, counted in the database.

The failures live in the `login_failures` table, not in a process's memory, so that every
worker process and every host behind a load balancer sees them, and a failure through
/legacy counts on /v2. Both stacks run the same functions (`check`, `record_failure`,
`record_success`): legacy in its request's `Session`, v2 in its units of work.

How each stack uses them, around the password check:

1. `check` before anything costly: a throttled login costs one indexed read, no argon2.
2. Look the user up, end the transaction.
3. In a password-hashing slot (`shop_core.security.hashing_slot`): `check` again, since
   attempts that failed while this one waited for the slot count too; verify the
   password; record the outcome. Recording inside the slot makes concurrent wrong guesses
   at one username stop at the limit, give or take the slots checking at that moment.

A login is refused when the username, or the client address, has `per_username` (or
`per_address`) failures within the last `window_s` seconds. It stays refused until the
oldest of those leaves the window: that is its `Retry-After`. Refused attempts are not
recorded, so a client that keeps trying does not extend its own lock-out, and a flood of
them costs no write. A success clears the failures of that username from that address
(the user's own typos), not those from elsewhere, which may be someone else's guesses.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Delete, Insert, Row, Select, delete, insert, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from shop_core.models import MAX_ADDRESS_LENGTH, MAX_USERNAME_LENGTH, LoginFailure
from shop_core.settings import Settings
from shop_core.timestamps import utcnow

logger = logging.getLogger(__name__)

# Where the server knows no client address (a Unix socket): all such clients share one.
UNKNOWN_ADDRESS = "unknown"
# Plain statements: the ORM has no objects of these rows to keep in step.
_CORE_ONLY = {"synchronize_session": False}


class LoginThrottled(Exception):
    """Too many failed logins for the username or from the address: answered 429."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"login throttled for {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_username: int
    per_address: int
    window_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return cls(
            per_username=settings.login_max_failures_per_username,
            per_address=settings.login_max_failures_per_address,
            window_s=settings.login_failure_window_s,
        )


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """Who tries to log in, from where, as the throttle keys them."""

    username: str
    address: str

    @classmethod
    def of(cls, username: str, address: str | None) -> LoginAttempt:
        # Cut to the columns' width. No user has a longer name, so a longer one is a
        # failure however it is cut; cutting it only keeps an unbounded input out of a row.
        return cls(
            username=username[:MAX_USERNAME_LENGTH],
            address=(address or UNKNOWN_ADDRESS)[:MAX_ADDRESS_LENGTH],
        )


# The statements, the same for both stacks.


def _nth_latest_failure(
    column: InstrumentedAttribute[str], value: str, n: int, since: datetime
) -> Any:
    """When the n-th most recent failure in the window happened, or NULL if there are fewer."""
    return (
        select(LoginFailure.failed_at)
        .where(column == value, LoginFailure.failed_at > since)
        .order_by(LoginFailure.failed_at.desc())
        .offset(n - 1)
        .limit(1)
        .scalar_subquery()
    )


def _lockout_statement(limits: LoginLimits, attempt: LoginAttempt, now: datetime) -> Select[Any]:
    # Both limits in one round trip, each answered from its index without counting rows.
    since = now - timedelta(seconds=limits.window_s)
    return select(
        _nth_latest_failure(LoginFailure.username, attempt.username, limits.per_username, since),
        _nth_latest_failure(
            LoginFailure.client_address, attempt.address, limits.per_address, since
        ),
    )


def _record_statement(attempt: LoginAttempt, now: datetime) -> Insert:
    return insert(LoginFailure).values(
        username=attempt.username, client_address=attempt.address, failed_at=now
    )


def _prune_statement(limits: LoginLimits, now: datetime) -> Delete:
    # Failures that left the window count for nobody: the table holds one window's worth.
    cutoff = now - timedelta(seconds=limits.window_s)
    return delete(LoginFailure).where(LoginFailure.failed_at <= cutoff)


def _clear_statement(attempt: LoginAttempt) -> Delete:
    return delete(LoginFailure).where(
        LoginFailure.username == attempt.username,
        LoginFailure.client_address == attempt.address,
    )


def _raise_if_locked(
    row: Row[Any], limits: LoginLimits, attempt: LoginAttempt, now: datetime
) -> None:
    window = timedelta(seconds=limits.window_s)
    ends = [failed_at + window for failed_at in row if failed_at is not None]
    if not ends:
        return
    retry_after_s = max(1, math.ceil((max(ends) - now).total_seconds()))
    logger.info(
        "login throttled for username %r from %r for %d s",
        attempt.username,
        attempt.address,
        retry_after_s,
    )
    raise LoginThrottled(retry_after_s)


def _log_failure(attempt: LoginAttempt) -> None:
    # The username and the address, never the password. %r escapes newlines and control
    # characters, so that a username cannot forge log lines; `LoginAttempt` cut its length.
    logger.warning("failed login for username %r from %r", attempt.username, attempt.address)


# `check` leaves the transaction to the caller; the others commit.


def check(session: Session | Connection, limits: LoginLimits, attempt: LoginAttempt) -> None:
    """Raise `LoginThrottled` if the username or the address has used up its failures."""
    now = utcnow()
    row = session.execute(_lockout_statement(limits, attempt, now)).one()
    _raise_if_locked(row, limits, attempt, now)


def record_failure(session: Session, limits: LoginLimits, attempt: LoginAttempt) -> None:
    now = utcnow()
    session.execute(_record_statement(attempt, now))
    session.execute(_prune_statement(limits, now), execution_options=_CORE_ONLY)
    session.commit()
    _log_failure(attempt)


def record_success(session: Session, attempt: LoginAttempt) -> None:
    session.execute(_clear_statement(attempt), execution_options=_CORE_ONLY)
    session.commit()
