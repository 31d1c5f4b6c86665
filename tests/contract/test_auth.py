"""Logging in and the token rules, the same on both stacks."""

from __future__ import annotations

import jwt
import pytest

from shop.settings import ShopSettings
from shop_core.security import issue_token
from tests.support import DEMO_PASSWORD, Stack, assert_error


@pytest.mark.parametrize(("user", "scope"), [("admin", "read write admin"), ("viewer", "read")])
def test_login_issues_a_bearer_jwt(
    stack: Stack, settings: ShopSettings, user: str, scope: str
) -> None:
    answer = stack.login(user, DEMO_PASSWORD)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.token_lifetime_s
    claims = jwt.decode(
        body["access_token"],
        settings.secret_key.get_secret_value(),
        algorithms=["HS256"],
        issuer=settings.token_issuer,
    )
    assert claims["sub"] == user
    assert claims["scope"] == scope
    assert claims["exp"] - claims["iat"] == settings.token_lifetime_s


def test_a_token_answer_is_never_stored(stack: Stack) -> None:
    # RFC 6749 5.1: no cache between the client and the gateway may keep the token.
    answer = stack.login("viewer", DEMO_PASSWORD)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Pragma"] == "no-cache"


@pytest.mark.parametrize(("user", "password"), [("clerk", "wrong"), ("nobody", DEMO_PASSWORD)])
def test_bad_credentials_are_401(stack: Stack, user: str, password: str) -> None:
    assert_error(stack, stack.login(user, password), 401)


def test_each_stack_takes_its_own_login_format(legacy: Stack, v2: Stack) -> None:
    credentials = {"username": "clerk", "password": DEMO_PASSWORD}
    assert_error(legacy, legacy.post("/auth/token", data=credentials), 400)
    assert_error(v2, v2.post("/auth/token", json=credentials), 422)


def _token(settings: ShopSettings, **overrides: object) -> str:
    claims: dict[str, object] = {
        "sub": "clerk",
        "scope": "read write",
        "iss": settings.token_issuer,
    }
    claims |= overrides
    issued = issue_token(
        subject=str(claims["sub"]),
        scopes=str(claims["scope"]),
        secret=str(overrides.get("secret", settings.secret_key.get_secret_value())),
        issuer=str(claims["iss"]),
        lifetime_s=int(overrides.get("lifetime_s", 3600)),  # type: ignore[call-overload]
    )
    return issued.access_token


INVALID_TOKEN = "The token is invalid or has expired."


@pytest.mark.parametrize(
    ("authorization", "a_token"),
    [
        ("Bearer not-a-jwt", True),
        ("Bearer ", False),
        ("Basic Y2xlcms6ZGVtbw==", False),
        ("token-without-scheme", False),
    ],
)
def test_malformed_authorization_is_401(stack: Stack, authorization: str, a_token: bool) -> None:
    answer = stack.get("/customers", headers={"Authorization": authorization})
    body = assert_error(stack, answer, 401)
    # Another scheme, or none, or an empty bearer: no token was sent, none is judged invalid.
    message = body["error"]["message"] if stack.name == "legacy" else body["detail"]
    assert (message == INVALID_TOKEN) == a_token, message


def test_a_token_whose_scope_is_not_a_string_is_401(stack: Stack, settings: ShopSettings) -> None:
    claims = {"sub": "clerk", "scope": ["read"], "iss": settings.token_issuer}
    token = jwt.encode(
        claims | {"iat": 1, "exp": 2**40}, settings.secret_key.get_secret_value(), algorithm="HS256"
    )
    answer = stack.get("/customers", headers={"Authorization": f"Bearer {token}"})
    assert_error(stack, answer, 401)


def test_an_unknown_user_cannot_log_in_with_the_stand_in_password(stack: Stack) -> None:
    # Unknown users are checked against a stand-in hash, so that they take as long as a
    # wrong password; matching it must not let them in.
    assert_error(stack, stack.login("nobody", "no such user"), 401)


def test_forged_expired_and_foreign_tokens_are_401(stack: Stack, settings: ShopSettings) -> None:
    forged = _token(settings, secret="another-secret-" + "y" * 32)
    foreign = _token(settings, iss="someone-else")
    expired = jwt.encode(
        {"sub": "clerk", "scope": "read", "iss": settings.token_issuer, "iat": 1, "exp": 2},
        settings.secret_key.get_secret_value(),
        algorithm="HS256",
    )
    unsigned = jwt.encode(
        {"sub": "clerk", "scope": "read", "iss": settings.token_issuer, "iat": 1, "exp": 2**40},
        key=None,
        algorithm="none",
    )
    for token in (forged, foreign, expired, unsigned):
        answer = stack.get("/customers", headers={"Authorization": f"Bearer {token}"})
        assert_error(stack, answer, 401)
    valid = _token(settings)
    assert stack.get("/customers", headers={"Authorization": f"Bearer {valid}"}).status_code == 200
