"""Whether a token's user still exists, and what it may still do: the same rule on both stacks.

A token outlives any change to its user: deleted, or with scopes taken away, the user
could go on until the token expires. So every authenticated request looks the user up,
and a token grants only the scopes its user still has. The answer is remembered for a
short while (`GATEWAY_USER_CACHE_TTL_S`) so that the look-up costs a query every few
seconds per user rather than one per request.

Each stack runs its own query (the legacy app blocking, v2 awaiting) and hands it here;
the cache is per app and per process, and only ever holds what the database said.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Final

from cachetools import TTLCache
from sqlalchemy import Select, select

from shop_core.models import User
from shop_core.security import TokenClaims

# Users a process remembers at once; a token names only real users (it is signed), so
# this bounds memory without turning anyone away: a user pushed out is looked up again.
MAX_CACHED_USERS: Final = 10_000

# The scopes of a user as stored (space-separated), or None for a user that is gone.
StoredScopes = str | None


def scopes_query(username: str) -> Select[str]:
    """The user's stored scopes; no row when the user does not exist."""
    return select(User.scopes).where(User.username == username)


class ActiveUsers:
    """The users behind tokens, as the database last said, for `ttl_s` seconds."""

    def __init__(self, *, ttl_s: float, maxsize: int = MAX_CACHED_USERS) -> None:
        # ttl 0: no cache at all, every request asks the database.
        self._cache: TTLCache[str, StoredScopes] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl_s) if ttl_s > 0 else None
        )
        # The legacy stack checks tokens from several threads; TTLCache is not thread-safe.
        self._lock = threading.Lock()

    def _cached(self, username: str) -> tuple[bool, StoredScopes]:
        if self._cache is None:
            return False, None
        with self._lock:
            if username in self._cache:
                return True, self._cache[username]
        return False, None

    def _remember(self, username: str, scopes: StoredScopes) -> None:
        if self._cache is not None:
            with self._lock:
                self._cache[username] = scopes

    def check(self, claims: TokenClaims, load: Callable[[str], StoredScopes]) -> TokenClaims | None:
        """The claims as far as the user still backs them, or None if the user is gone.

        `load` runs the `scopes_query` on a cache miss (blocking).
        """
        found, scopes = self._cached(claims.subject)
        if not found:
            scopes = load(claims.subject)
            self._remember(claims.subject, scopes)
        return _backed(claims, scopes)

    async def acheck(
        self, claims: TokenClaims, load: Callable[[str], Awaitable[StoredScopes]]
    ) -> TokenClaims | None:
        """`check` for an async `load`."""
        found, scopes = self._cached(claims.subject)
        if not found:
            scopes = await load(claims.subject)
            self._remember(claims.subject, scopes)
        return _backed(claims, scopes)


def _backed(claims: TokenClaims, scopes: StoredScopes) -> TokenClaims | None:
    if scopes is None:
        return None
    # A token keeps only what the user still has: scopes taken away are gone at once
    # (within the cache's ttl), and a token never grants more than it says.
    return TokenClaims(subject=claims.subject, scopes=claims.scopes & frozenset(scopes.split()))
