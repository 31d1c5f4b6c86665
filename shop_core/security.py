"""Passwords (argon2) and access tokens (HS256 JWTs): the same rules on both stacks."""

from __future__ import annotations

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
