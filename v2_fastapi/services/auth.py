"""Checking a user's password."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from shop_core.models import User
from shop_core.security import verify_password


async def authenticate(session: AsyncSession, *, username: str, password: str) -> User | None:
    """The user if the password is theirs; the hash is checked for unknown users too."""
    user = await session.scalar(select(User).where(User.username == username))
    # End the transaction before the slow hash check: the connection (and, on SQLite,
    # the write lock a POST session takes) is not held while argon2 works.
    await session.close()
    # argon2 takes tens of milliseconds of CPU: off the event loop.
    verified = await run_in_threadpool(
        verify_password, user.password_hash if user else None, password
    )
    return user if verified else None
