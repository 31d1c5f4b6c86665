"""Checking a user's password, within the login throttle and the cap on concurrent checks."""

from __future__ import annotations

from anyio import from_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from shop_core import login_throttle
from shop_core.login_throttle import LoginAttempt, LoginLimits
from shop_core.models import User
from shop_core.security import hashing_slot, verify_password


async def authenticate(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    address: str | None,
    limits: LoginLimits,
    hash_concurrency: int,
    hash_wait_s: float,
) -> User | None:
    """The user if the password is theirs; the hash is checked for unknown users too.

    Raises `LoginThrottled` (429) when the username or the address has used up its failed
    logins, before any hashing, and `PasswordChecksBusy` (503) when no hashing slot frees
    in time.
    """
    attempt = LoginAttempt.of(username, address)
    await login_throttle.check_async(session, limits, attempt)
    user = await session.scalar(select(User).where(User.username == username))
    # End the transaction before the slow hash check: the connection (and, on SQLite,
    # the write lock a POST session takes) is not held while argon2 works.
    await session.close()
    password_hash = user.password_hash if user else None

    def in_slot() -> bool:
        # In a worker thread from acquiring the slot to releasing it, so the slot cannot
        # leak whatever happens to the request meanwhile; the database calls run on the
        # event loop, the session's home.
        with hashing_slot(concurrency=hash_concurrency, wait_s=hash_wait_s):
            # Again: attempts that failed while this one waited for a slot count too.
            from_thread.run(login_throttle.check_async, session, limits, attempt)
            from_thread.run(session.close)
            verified = verify_password(password_hash, password) and user is not None
            if verified:
                from_thread.run(login_throttle.record_success_async, session, attempt)
            else:
                from_thread.run(login_throttle.record_failure_async, session, limits, attempt)
            return verified

    # argon2 takes tens of milliseconds of CPU: off the event loop.
    return user if await run_in_threadpool(in_slot) else None
