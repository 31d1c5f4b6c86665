"""The dashboard's session: the admin token traded once, at login, for a signed cookie.

A browser must not carry the admin token in a URL (history, logs, Referer), and a script
of the page must not read it. `POST /_gateway/login` takes the token from a form and sets
`gateway_session`: HttpOnly (no script reads it), SameSite=Strict (no other site's page
sends it), Path=/_gateway (no app of the pair sees it), Secure over HTTPS.

The cookie is `<expiry>.<nonce>.<signature>`, an HMAC-SHA256 under a key derived from the
admin token: nothing is stored, every worker and host checks it alike, and changing the
token ends every session. Logging out removes the cookie from the browser; a copy taken
before stays valid until its expiry (`GATEWAY_DASHBOARD_SESSION_S`).

Changes need more than the cookie (SameSite is a browser's promise, and older browsers or
a sibling subdomain may break it): the session's CSRF token, an HMAC of its nonce, sent by
the page's script in `X-CSRF-Token`. Only a page of the gateway, served to the holder of
the cookie, has it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Final

COOKIE: Final = "gateway_session"
CSRF_HEADER: Final = "x-csrf-token"
CSRF_FIELD: Final = "csrf_token"
COOKIE_PATH: Final = "/_gateway"


class Sessions:
    def __init__(
        self, admin_token: str, *, lifetime_s: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._token = admin_token.encode()
        self._key = hmac.new(self._token, b"gateway dashboard session", hashlib.sha256).digest()
        self.lifetime_s = lifetime_s
        self._clock = clock

    def token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    def new(self) -> str:
        """A fresh session's cookie value."""
        payload = f"{int(self._clock()) + self.lifetime_s}.{secrets.token_urlsafe(18)}"
        return f"{payload}.{self._sign(b'session.' + payload.encode())}"

    def nonce(self, cookie: str | None) -> str | None:
        """The session's nonce when `cookie` is one of ours and not expired, else None."""
        if not cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        expiry, _, nonce = payload.partition(".")
        if not (expiry.isdigit() and nonce and signature):
            return None
        if not hmac.compare_digest(signature, self._sign(b"session." + payload.encode())):
            return None
        return nonce if int(expiry) > self._clock() else None

    def csrf(self, cookie: str | None) -> str | None:
        """The CSRF token of a valid session."""
        nonce = self.nonce(cookie)
        return None if nonce is None else self._sign(b"csrf." + nonce.encode())

    def allows_change(self, cookie: str | None, csrf: str | None) -> bool:
        """A valid session AND its CSRF token."""
        expected = self.csrf(cookie)
        return expected is not None and csrf is not None and hmac.compare_digest(csrf, expected)

    def _sign(self, message: bytes) -> str:
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
