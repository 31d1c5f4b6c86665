"""Flows written once for both sides of an app pair.

A team writes its flows in an abstract subclass of `PairedUser`, in terms of `call` and
`list_of`, and gets one user class per side by naming the side's `Dialect` (the README's
"Load-test your own pair"; `tests/notes_pair/locustfile.py` is a complete example).

Every answer is checked (status, then body), each user paces itself to `--user-rps`
requests per second (`constant_throughput`; every task should send one request so that
a task rate is a request rate), and the users of a side share one login per process.
Rows are named `<prefix><name>`: one row per operation and side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

from gevent.lock import Semaphore
from locust import constant_throughput, events
from locust.contrib.fasthttp import FastHttpUser

from loadtests import warmup
from loadtests.dialect import Dialect

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
    parser.add_argument("--login-user", "--shop-user", default="clerk", help="who logs in")
    parser.add_argument("--login-password", "--shop-password", default="demo", help="password")


@dataclass
class SharedLogin:
    """The token that the users of one side share in this process.

    Logging in is often slow on purpose (the shop's argon2: about 0.2 s of server CPU), so
    100 users logging in at once would keep a core busy for 20 s, and every step of a ramp
    would start with a storm of them. The users of a side log in once per Locust process
    and share the token, as an integration's workers share a service token.
    """

    authorization: str | None = None
    renew_at: float = 0.0
    lock: Semaphore = field(default_factory=Semaphore)


_LOGINS: dict[str, SharedLogin] = {}
# The user classes that name a dialect, to tell their set-up rows from the rest.
_PAIRED: list[type[PairedUser]] = []


class PairedUser(FastHttpUser):
    """The flows of a pair; a subclass per side sets `dialect`."""

    abstract = True
    host = "http://127.0.0.1:8000"
    network_timeout = 30.0
    connection_timeout = 10.0
    dialect: ClassVar[Dialect]
    # Operations ("METHOD /name") only `set_up` sends: the warm-up keeps their numbers.
    setup_operations: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "dialect" in cls.__dict__:
            _PAIRED.append(cls)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        rate = float(getattr(options, "user_rps", 0.0) or 0.0)
        self._pace: Callable[[Any], float] | None = constant_throughput(rate) if rate > 0 else None
        self._credentials = (
            str(getattr(options, "login_user", "clerk")),
            str(getattr(options, "login_password", "demo")),
        )

    def wait_time(self) -> float:
        return self._pace(self) if self._pace is not None else 0.0

    def on_start(self) -> None:
        try:
            self.set_up()
        finally:
            warmup.user_ready(self.environment)

    def set_up(self) -> None:
        """What a user does before its flows: by default, the side's login if it has one."""
        self.authorization()

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
        """Send one request; it succeeds only with `status` and a body that passes `check`.

        An expected error status (4xx, 5xx) also needs a body in the dialect's error format.
        """
        headers = dict(kwargs.pop("headers", {}))
        login = _LOGINS.get(self.dialect.prefix)
        if login is not None and login.authorization is not None:
            headers.setdefault("Authorization", login.authorization)
        prefix = self.dialect.prefix
        # rest(): JSON parsed into `js`, and an exception in `check` fails the request.
        with self.rest(method, prefix + path, name=prefix + name, headers=headers, **kwargs) as r:
            ans: Any = r  # Locust's response types leave `failure` and `success` untyped
            if ans.status_code != status:
                # Status 0: no answer at all (refused, reset, timed out); say why.
                text = (ans.text or "")[:200] or repr(getattr(ans, "error", None))
                ans.failure(f"expected {status}, got {ans.status_code}: {text}")
                return None
            body = ans.js
            if status >= 400:
                content_type = ans.headers.get("Content-Type") or ""
                problem = self.dialect.error_problem(status, content_type, body)
            elif not isinstance(body, dict):
                problem = "the body is not a JSON object"
            else:
                problem = check(body) if check is not None else None
            if problem is not None:
                ans.failure(problem)
                return None
            ans.success()
            checked: JsonObject | None = body
            return checked

    def items(self, body: JsonObject | None, resource: str) -> list[JsonObject]:
        return self.dialect.items(body, resource) if body else []

    def list_of(
        self, resource: str, params: dict[str, Any], *, name: str, then: Check | None = None
    ) -> JsonObject | None:
        """GET a list of `resource`: a list answer in the dialect, then `then`."""
        key = self.dialect.list_key.format(resource=resource)

        def listed(body: JsonObject) -> str | None:
            if not isinstance(body.get(key), list):
                return f"not a list of {resource}: {str(body)[:200]}"
            return then(body) if then is not None else None

        query = f"?{urlencode(params)}" if params else ""
        return self.call("GET", f"/{resource}{query}", name=name, check=listed)

    def authorization(self) -> str | None:
        """The side's shared token, logging in first when there is none or it is due.

        None when the login failed, or when the dialect has no login (nothing to send).
        """
        if self.dialect.login is None:
            return None
        login = _LOGINS.setdefault(self.dialect.prefix, SharedLogin())
        # One user logs in while the others wait for its token instead of logging in too.
        with login.lock:
            if time.monotonic() >= login.renew_at:
                self._log_in(login)
        return login.authorization

    def _log_in(self, login: SharedLogin) -> None:
        assert self.dialect.login is not None

        def issued(body: JsonObject) -> str | None:
            ok = body.get("token_type") == "bearer" and body.get("access_token")
            return None if ok else "no bearer token in the answer"

        login.authorization = None
        path = self.dialect.login_path
        request = self.dialect.login(*self._credentials)
        body = self.call("POST", path, name=path, check=issued, **request)
        if body is None:
            login.renew_at = time.monotonic() + _LOGIN_RETRY_S
            return
        login.authorization = f"Bearer {body['access_token']}"
        # Renew a minute early so that a long run never sends an expired token.
        login.renew_at = time.monotonic() + max(int(body.get("expires_in", 3600)) - 60, 1)


def setup_row(method: str, name: str) -> bool:
    """Rows only the set-up sends (the login, `setup_operations`): kept after the warm-up."""
    for user in _PAIRED:
        prefix = user.dialect.prefix
        if name.startswith(prefix):
            operation = f"{method} {name.removeprefix(prefix)}"
            if operation in user.setup_operations or (
                user.dialect.login is not None and operation == f"POST {user.dialect.login_path}"
            ):
                return True
    return False


warmup.listen(events.init_command_line_parser, add_options)
warmup.install(keep=setup_row)
