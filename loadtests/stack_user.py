"""The plumbing under the flows: a FastHttpUser that speaks one stack's dialect.

It checks every answer (status and body, not just counts), paces itself for a fixed
arrival rate, and shares one login per stack and Locust process. The flows themselves
are in `locustfile.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlencode

from gevent.lock import Semaphore
from locust import constant_throughput
from locust.contrib.fasthttp import FastHttpUser

JsonObject = dict[str, Any]
Check = Callable[[JsonObject], str | None]

_LOGIN_RETRY_S = 5.0


def add_options(parser: Any) -> None:
    parser.add_argument(
        "--user-rps",
        type=float,
        default=0.0,
        help="requests per second each user offers (0: no pause between requests)",
    )
    parser.add_argument("--shop-user", default="clerk", help="demo user to log in as")
    parser.add_argument("--shop-password", default="demo", help="its password")


class SharedLogin:
    """The token that the users of one stack share in this process.

    Logging in is slow on purpose (argon2: about 0.2 s of server CPU here), so 100 users
    logging in at once would keep a core busy for 20 s, and every step of a ramp would
    start with a storm of them. The users of a stack log in once per Locust process and
    share the token, as an integration's workers share a service token.
    """

    def __init__(self) -> None:
        self.authorization: str | None = None
        self.renew_at = 0.0
        self.lock = Semaphore()


_LOGINS: dict[str, SharedLogin] = {}


class StackUser(FastHttpUser):
    """One stack's client; subclasses say how their stack spells logins and lists."""

    abstract = True
    host = "http://127.0.0.1:8000"
    network_timeout = 30.0
    connection_timeout = 10.0
    prefix: ClassVar[str]

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        rate = float(getattr(options, "user_rps", 0.0) or 0.0)
        self._pace: Callable[[Any], float] | None = constant_throughput(rate) if rate > 0 else None
        self._credentials = (
            str(getattr(options, "shop_user", "clerk")),
            str(getattr(options, "shop_password", "demo")),
        )

    def wait_time(self) -> float:
        return self._pace(self) if self._pace is not None else 0.0

    # What differs between the stacks.

    def login_request(self, username: str, password: str) -> JsonObject:
        raise NotImplementedError

    def window(self, offset: int, limit: int) -> dict[str, int]:
        raise NotImplementedError

    def list_key(self, resource: str) -> str:
        raise NotImplementedError

    def items(self, body: JsonObject, resource: str) -> list[JsonObject]:
        found: list[JsonObject] = body.get(self.list_key(resource), [])
        return found

    # The plumbing: one checked request.

    def call(
        self,
        method: str,
        path: str,
        *,
        name: str,
        status: int = 200,
        check: Check | None = None,
        **kwargs: Any,
    ) -> JsonObject | None:
        """Send one request; it succeeds only with `status` and a body that passes `check`."""
        headers = dict(kwargs.pop("headers", {}))
        login = _LOGINS.get(self.prefix)
        if login is not None and login.authorization is not None:
            headers.setdefault("Authorization", login.authorization)
        url, label = self.prefix + path, self.prefix + name
        with self.client.request(
            method, url, name=label, headers=headers, catch_response=True, **kwargs
        ) as response:
            if response.status_code != status:
                # Status 0: no answer at all (refused, reset, timed out); say why.
                text = (response.text or "")[:200] or repr(getattr(response, "error", None))
                response.failure(f"expected {status}, got {response.status_code}: {text}")
                return None
            try:
                body = response.json()
            except (ValueError, TypeError):
                response.failure("the body is not JSON")
                return None
            problem = None if isinstance(body, dict) else "the body is not a JSON object"
            if problem is None and check is not None:
                problem = check(body)
            if problem is not None:
                response.failure(problem)
                return None
            response.success()
            checked: JsonObject = body
            return checked

    def listed(self, resource: str, then: Check | None = None) -> Check:
        """A check that the body is a list answer in the stack's dialect, then `then`."""

        def check(body: JsonObject) -> str | None:
            items = body.get(self.list_key(resource))
            if not isinstance(items, list) or not isinstance(body.get("total"), int):
                return f"not a list of {resource}: {str(body)[:200]}"
            return then(body) if then is not None else None

        return check

    def list_of(
        self, resource: str, params: dict[str, Any], *, name: str, then: Check | None = None
    ) -> JsonObject | None:
        query = urlencode(params)
        return self.call(
            "GET", f"/{resource}?{query}", name=name, check=self.listed(resource, then)
        )

    def authorization(self) -> str | None:
        """The stack's shared token, logging in first when there is none or it is due."""
        login = _LOGINS.setdefault(self.prefix, SharedLogin())
        # One user logs in while the others wait for its token instead of logging in too.
        with login.lock:
            if time.monotonic() >= login.renew_at:
                self.log_in(login)
        return login.authorization

    def log_in(self, login: SharedLogin) -> None:
        def issued(body: JsonObject) -> str | None:
            ok = body.get("token_type") == "bearer" and body.get("access_token")
            return None if ok else "no bearer token in the answer"

        login.authorization = None
        request = self.login_request(*self._credentials)
        body = self.call("POST", "/auth/token", name="/auth/token", check=issued, **request)
        if body is None:
            login.renew_at = time.monotonic() + _LOGIN_RETRY_S
            return
        login.authorization = f"Bearer {body['access_token']}"
        # Renew a minute early so that a long run never sends an expired token.
        login.renew_at = time.monotonic() + max(int(body["expires_in"]) - 60, 1)
