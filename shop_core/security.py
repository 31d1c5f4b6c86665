"""Passwords (argon2) and access tokens (HS256 JWTs): the same rules on both stacks."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shop_core.timestamps import utcnow

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "scope", "iat", "exp", "iss"]

_hasher = PasswordHasher()
# Verifying against a throwaway hash when the user does not exist keeps the answer time
# the same for unknown users and wrong passwords.
_UNKNOWN_USER_HASH = _hasher.hash("no such user")


class PasswordChecksBusy(Exception):
    """Every password-hashing slot of the process stayed taken for the whole wait."""

    # The wait for a slot is short, and a slot frees within one check's time.
    retry_after_s = 1


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or from another issuer."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists (argon2 compares in constant time)."""
    try:
        return _hasher.verify(password_hash or _UNKNOWN_USER_HASH, password) and (
            password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def hashing_slots(concurrency: int) -> threading.BoundedSemaphore:
    """The process's slots for password checks: each argon2 check takes 64 MiB and a core.

    One semaphore per size for the life of the process. Both stacks run in one process,
    built from the same settings, so they share it and the cap holds for them together; a
    process that builds gateways with other sizes (the tests do) gets one per size.
    """
    return threading.BoundedSemaphore(concurrency)


@contextmanager
def hashing_slot(*, concurrency: int, wait_s: float) -> Iterator[None]:
    """Hold a password-checking slot; `PasswordChecksBusy` when none frees within `wait_s`.

    A blocking wait, for a thread: a login waits here instead of allocating argon2's memory.
    """
    slots = hashing_slots(concurrency)
    if not slots.acquire(timeout=wait_s):
        raise PasswordChecksBusy
    try:
        yield
    finally:
        slots.release()


def issue_token(
    *, subject: str, scopes: str, secret: str, issuer: str, lifetime_s: int
) -> IssuedToken:
    now = utcnow()
    claims = {
        "sub": subject,
        "scope": scopes,
        "iat": now,
        "exp": now + timedelta(seconds=lifetime_s),
        "iss": issuer,
    }
    return IssuedToken(jwt.encode(claims, secret, algorithm=ALGORITHM), lifetime_s)


def decode_token(token: str, *, secret: str, issuer: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    subject, scope = claims["sub"], claims["scope"]
    if not isinstance(subject, str) or not isinstance(scope, str):
        raise InvalidToken("sub and scope must be strings")
    return TokenClaims(subject=subject, scopes=frozenset(scope.split()))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
