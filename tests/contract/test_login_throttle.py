"""Login throttling on both stacks, over both databases, on gateways of the tests' own.

Each test serves a gateway with small limits and logs in as a user of its own, from a
client address of its own (`X-Forwarded-For`, which uvicorn trusts from 127.0.0.1), so
that the failures other tests leave in the shared database count for none of them.
Password checks are counted by swapping the argon2 hasher for one that counts.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
import requests
from argon2 import PasswordHasher
from sqlalchemy import Engine, func, insert, select

from gateway.background_server import BackgroundServer
from shop.app import create_app
from shop_core import security
from shop_core.models import LoginFailure, User
from shop_core.security import hash_password, hashing_slots
from shop_core.timestamps import utcnow
from tests.conftest import make_settings
from tests.support import STACKS, Stack, assert_error, wait_for

PASSWORD = "right-password"
WINDOW_S = 900
# Limits that no test here reaches unless it means to.
UNREACHED = 10_000


class CountingHasher(PasswordHasher):
    """argon2 as configured, counting the password checks it runs."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.checks = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.checks += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(security, "_hasher", counting)
    return counting


class Served:
    """A gateway of the test's own; logins as a user of the test's own, from its address."""

    def __init__(self, base_url: str, username: str, address: str) -> None:
        self.stacks = {name: Stack(name, base_url, {}) for name in STACKS}
        self.base_url = base_url
        self.username = username
        self.address = address

    def login(
        self,
        stack: str,
        password: str = PASSWORD,
        *,
        username: str | None = None,
        address: str | None = None,
    ) -> requests.Response:
        credentials = {"username": username or self.username, "password": password}
        headers = {"X-Forwarded-For": address or self.address}
        body = {"json": credentials} if stack == "legacy" else {"data": credentials}
        # A session per call: the stacks' sessions are not shared between threads.
        with requests.Session() as http:
            return http.post(
                f"{self.base_url}/{stack}/auth/token", headers=headers, timeout=60, **body
            )

    def throttled(self, answer: requests.Response, stack: str) -> int:
        """The answer is a 429 in the stack's dialect; its Retry-After in seconds."""
        body = assert_error(self.stacks[stack], answer, 429)
        if stack == "legacy":
            assert body["error"]["code"] == "too_many_requests"
        retry_after = int(answer.headers["Retry-After"])
        assert retry_after >= 1
        return retry_after


Serve = Callable[..., Served]


@pytest.fixture
def serve(database_url: str, db: Engine, unique: str) -> Iterator[Serve]:
    """`serve(**settings)`: a gateway with these settings, a user and an address of its own."""
    username = f"throttle-{unique.lower()}"
    # A hash of its own: every stored hash is salted afresh (test_auth_matrix checks).
    password_hash = hash_password(PASSWORD)
    with db.begin() as conn:
        conn.execute(
            insert(User).values(username=username, password_hash=password_hash, scopes="read")
        )
    address = f"2001:db8::{unique[:4]}:{unique[4:]}".lower()
    with ExitStack() as stack:

        def serve(**overrides: Any) -> Served:
            limits: dict[str, Any] = {
                "login_max_failures_per_username": UNREACHED,
                "login_max_failures_per_address": UNREACHED,
                "login_failure_window_s": WINDOW_S,
            }
            settings = make_settings(database_url, **(limits | overrides))
            server = stack.enter_context(BackgroundServer(create_app(settings)))
            return Served(server.url, username, address)

        yield serve


def _failures(db: Engine, **where: str) -> int:
    conditions = [getattr(LoginFailure, column) == value for column, value in where.items()]
    with db.connect() as conn:
        count: int = conn.scalar(select(func.count()).select_from(LoginFailure).where(*conditions))
    return count


@pytest.mark.parametrize("failing", STACKS)
def test_wrong_passwords_up_to_the_limit_lock_the_username_out_on_both_stacks(
    serve: Serve, hasher: CountingHasher, failing: str
) -> None:
    served = serve(login_max_failures_per_username=3)
    other = next(name for name in STACKS if name != failing)
    for _ in range(3):
        assert served.login(failing, "wrong").status_code == 401
    assert hasher.checks == 3

    # The next attempt on either stack, wrong or right, is refused before any hashing.
    retry_after = served.throttled(served.login(failing, "wrong"), failing)
    assert WINDOW_S - 120 < retry_after <= WINDOW_S
    for name in (failing, other):
        served.throttled(served.login(name), name)
    # The limit is the username's, whichever address the next attempt comes from.
    served.throttled(served.login(other, address="2001:db8::1:2"), other)
    assert hasher.checks == 3


def test_the_address_limit_holds_across_usernames(serve: Serve, db: Engine) -> None:
    served = serve(login_max_failures_per_address=3)
    for number in range(3):
        name = STACKS[number % 2]
        answer = served.login(name, "wrong", username=f"{served.username}-guess-{number}")
        assert answer.status_code == 401, answer.text
    assert _failures(db, client_address=served.address) == 3

    # From that address, even a user with the right password waits; from another, not.
    for name in STACKS:
        served.throttled(served.login(name), name)
    assert served.login("v2", address="2001:db8::3:4").status_code == 200
    assert _failures(db, client_address=served.address) == 3


def test_a_success_clears_that_usernames_failures_from_that_address(
    serve: Serve, db: Engine
) -> None:
    served = serve(login_max_failures_per_username=2)
    assert served.login("legacy", "wrong").status_code == 401
    assert served.login("v2").status_code == 200
    assert _failures(db, username=served.username) == 0
    # One more typo stays below the limit of two: the first no longer counts.
    assert served.login("v2", "wrong").status_code == 401
    assert served.login("legacy").status_code == 200


def _unless_throttled(answer: requests.Response) -> requests.Response | None:
    return None if answer.status_code == 429 else answer


def test_the_lock_out_ends_when_the_window_has_passed(serve: Serve) -> None:
    window_s = 5  # generous: the first refusal must come while the failure still counts
    served = serve(login_max_failures_per_username=1, login_failure_window_s=window_s)
    assert served.login("legacy", "wrong").status_code == 401
    for name in STACKS:
        assert served.throttled(served.login(name), name) <= window_s
    for name in STACKS:
        answer = wait_for(
            lambda name=name: _unless_throttled(served.login(name)),
            f"{name}: a login after the window",
            timeout_s=window_s + 10,
        )
        assert answer.status_code == 200, answer.text


def test_failures_that_left_the_window_are_deleted(serve: Serve, db: Engine) -> None:
    served = serve()
    old = utcnow() - timedelta(seconds=WINDOW_S + 60)
    for name in STACKS:
        with db.begin() as conn:
            conn.execute(
                insert(LoginFailure).values(
                    username=served.username, client_address=served.address, failed_at=old
                )
            )
        assert served.login(name, "wrong").status_code == 401
        with db.connect() as conn:
            left = conn.scalars(
                select(LoginFailure.failed_at).where(LoginFailure.username == served.username)
            ).all()
        assert old not in left and len(left) == STACKS.index(name) + 1, left


def test_concurrent_wrong_logins_stop_at_the_limit(serve: Serve, hasher: CountingHasher) -> None:
    """Attempts that pass the first check together are checked again in their hashing slot."""
    served = serve(
        login_max_failures_per_username=3, password_hash_concurrency=1, password_hash_wait_s=30
    )
    attempts = 10
    start = threading.Barrier(attempts)

    def attempt(number: int) -> int:
        start.wait()
        return served.login(STACKS[number % 2], "wrong").status_code

    with ThreadPoolExecutor(attempts) as pool:
        statuses = Counter(pool.map(attempt, range(attempts)))
    assert statuses == {401: 3, 429: attempts - 3}
    assert hasher.checks == 3


def test_a_login_that_gets_no_hashing_slot_in_time_is_503_without_hashing(
    serve: Serve, hasher: CountingHasher, db: Engine
) -> None:
    served = serve(password_hash_concurrency=2, password_hash_wait_s=0.2)
    slots = hashing_slots(2)
    # Held by this test, as by two long password checks of either stack.
    assert slots.acquire(timeout=10) and slots.acquire(timeout=10)
    try:
        for name in STACKS:
            answer = served.login(name)
            assert_error(served.stacks[name], answer, 503)
            # As documented: a slot frees within one check's time.
            assert answer.headers["Retry-After"] == "1"
    finally:
        slots.release()
        slots.release()
    assert hasher.checks == 0
    assert _failures(db, username=served.username) == 0
    assert served.login("legacy").status_code == 200


def test_failed_logins_are_logged_without_the_password(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = serve()
    secret = f"wrong-{served.username}-secret"
    with caplog.at_level(logging.DEBUG):
        for name in STACKS:
            assert served.login(name, secret).status_code == 401
    failures = [
        record.getMessage()
        for record in caplog.records
        if record.name == "shop_core.login_throttle" and record.levelno == logging.WARNING
    ]
    assert len(failures) == 2, failures
    for message in failures:
        assert served.username in message and served.address in message, message
    leaked = [record for record in caplog.records if secret in caplog.handler.format(record)]
    assert not leaked, leaked


def test_the_openapi_document_describes_the_429(serve: Serve) -> None:
    served = serve()
    document = requests.get(f"{served.base_url}/openapi.json", timeout=10).json()
    responses = document["paths"]["/auth/token"]["post"]["responses"]
    assert "Retry-After" in responses["429"]["headers"]
    assert set(responses["429"]["content"]) == {"application/problem+json"}
