"""A token is worth what its user still is: deleted, it is refused; scopes taken away, they
are gone, on both stacks, within GATEWAY_USER_CACHE_TTL_S."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import Engine, delete, insert, update

from gateway.background_server import BackgroundServer
from shop.app import create_app
from shop.settings import ShopSettings
from shop_core.models import User
from shop_core.security import hash_password
from tests.conftest import make_settings
from tests.support import STACKS, Stack, assert_error, wait_for

CACHE_TTL_S = 0.5
PASSWORD = "a-password-of-this-test"
# Far beyond the cache's ttl: only a token that is never refused waits this long.
DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def short_cache_gateway(database_url: str) -> Iterator[BackgroundServer]:
    """A gateway that remembers a token's user for half a second."""
    settings: ShopSettings = make_settings(database_url, user_cache_ttl_s=CACHE_TTL_S)
    with BackgroundServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def own_user(db: Engine, password_hash: str) -> Iterator[str]:
    """A user of this test's own (`read write`), never one of the demo users."""
    username = f"user-{uuid.uuid4().hex[:10]}"
    with db.begin() as conn:
        conn.execute(
            insert(User).values(username=username, password_hash=password_hash, scopes="read write")
        )
    yield username
    with db.begin() as conn:
        conn.execute(delete(User).where(User.username == username))


def _stacks(server: BackgroundServer, token: str) -> list[tuple[Stack, dict[str, str]]]:
    return [(Stack(name, server.url, {}), {"Authorization": f"Bearer {token}"}) for name in STACKS]


@pytest.mark.parametrize("login_stack", STACKS)
def test_a_deleted_users_token_is_401_on_both_stacks(
    short_cache_gateway: BackgroundServer, db: Engine, own_user: str, login_stack: str
) -> None:
    login = Stack(login_stack, short_cache_gateway.url, {}).login(own_user, PASSWORD)
    assert login.status_code == 200, login.text
    stacks = _stacks(short_cache_gateway, login.json()["access_token"])
    for stack, auth in stacks:
        assert stack.get("/customers", headers=auth).status_code == 200

    with db.begin() as conn:
        conn.execute(delete(User).where(User.username == own_user))

    for stack, auth in stacks:
        wait_for(
            lambda s=stack, a=auth: s.get("/customers", headers=a).status_code == 401,
            f"{stack.name}: 401 for the deleted user's token",
            timeout_s=DEADLINE_S,
        )
        answer = stack.get("/customers", headers=auth)
        assert_error(stack, answer, 401)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_scopes_taken_from_a_user_are_taken_from_its_tokens(
    short_cache_gateway: BackgroundServer, db: Engine, own_user: str, unique: str
) -> None:
    login = Stack("legacy", short_cache_gateway.url, {}).login(own_user, PASSWORD)
    assert login.status_code == 200, login.text
    stacks = _stacks(short_cache_gateway, login.json()["access_token"])

    with db.begin() as conn:
        conn.execute(update(User).where(User.username == own_user).values(scopes="read"))

    def create_customer(stack: Stack, auth: dict[str, str]) -> requests.Response:
        body = {"name": "Scope test", "email": f"scope-{unique.lower()}-{stack.name}@example.com"}
        return stack.post("/customers", json=body, headers=auth)

    for stack, auth in stacks:
        wait_for(
            lambda s=stack, a=auth: create_customer(s, a).status_code == 403,
            f"{stack.name}: 403 once the scope is taken away",
            timeout_s=DEADLINE_S,
        )
        assert_error(stack, create_customer(stack, auth), 403)
        # What the user still has, the token still gives.
        assert stack.get("/customers", headers=auth).status_code == 200
