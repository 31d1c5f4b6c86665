"""Checking a user's password, within the login throttle and the cap on concurrent checks."""

from __future__ import annotations

from anyio import from_thread, to_thread
from sqlalchemy import Connection, select

from shop_core import login_throttle
from shop_core.login_throttle import LoginAttempt, LoginLimits
from shop_core.models import User
from shop_core.security import hashing_slot, verify_password
from v2_fastapi.database import Database
from v2_fastapi.services.common import AnyRow

_ACCOUNT = select(User.username, User.scopes, User.password_hash)


def _throttled_look_up(
    conn: Connection, *, username: str, limits: LoginLimits, attempt: LoginAttempt
) -> AnyRow | None:
    # The throttle first: a throttled login costs one indexed read, no argon2.
    login_throttle.check(conn, limits, attempt)
    return conn.execute(_ACCOUNT.where(User.username == username)).one_or_none()


async def authenticate(
    db: Database,
    *,
    username: str,
    password: str,
    address: str | None,
    limits: LoginLimits,
    hash_concurrency: int,
    hash_wait_s: float,
) -> AnyRow | None:
    """The user's row (`username`, `scopes`) if the password is theirs, else None.

    The one service that is not a single unit of work: the password check sits between
    its reads and its write, and holds neither a connection nor, on SQLite, the writer's
    place while argon2 works. The hash is checked for unknown users too.

    Raises `LoginThrottled` (429) when the username or the address has used up its failed
    logins, before any hashing, and `PasswordChecksBusy` (503) when no hashing slot frees
    in time.
    """
    attempt = LoginAttempt.of(username, address)
    user = await db.read(_throttled_look_up, username=username, limits=limits, attempt=attempt)
    password_hash = user.password_hash if user else None

    def in_slot() -> bool:
        # In a worker thread from acquiring the slot to releasing it, so the slot cannot
        # leak whatever happens to the request meanwhile; the database work goes back
        # through the event loop to `db`, the one way to the database.
        with hashing_slot(concurrency=hash_concurrency, wait_s=hash_wait_s):
            # Again: attempts that failed while this one waited for a slot count too.
            from_thread.run(db.read, login_throttle.check, limits, attempt)
            verified = verify_password(password_hash, password) and user is not None
            if verified:
                from_thread.run(db.write, login_throttle.record_success, attempt)
            else:
                from_thread.run(db.write, login_throttle.record_failure, limits, attempt)
            return verified

    # argon2 takes tens of milliseconds of CPU: off the event loop.
    return user if await to_thread.run_sync(in_slot) else None
