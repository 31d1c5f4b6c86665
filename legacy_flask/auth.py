"""Tokens: `POST /auth/token`, and the `require_scope` guard the other blueprints use."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Blueprint, Flask, current_app, g, request
from sqlalchemy import select
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from legacy_flask.db import get_engine, get_session
from legacy_flask.schemas import LoginSchema, load_body
from shop_core import login_throttle
from shop_core.accounts import ActiveUsers, StoredScopes, scopes_query
from shop_core.login_throttle import LoginAttempt, LoginLimits
from shop_core.models import User
from shop_core.security import (
    InvalidToken,
    bearer_token,
    decode_token,
    hashing_slot,
    issue_token,
    verify_password,
)

P = ParamSpec("P")
R = TypeVar("R")

bp = Blueprint("auth", __name__, url_prefix="/auth")
login_schema = LoginSchema()
_USERS = "legacy_flask.users"
# RFC 6749 5.1: an answer with a token is not to be stored by any cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def init_app(app: Flask) -> None:
    """Remember the users behind tokens for USER_CACHE_TTL_S seconds (0: ask every time)."""
    app.extensions[_USERS] = ActiveUsers(ttl_s=app.config["USER_CACHE_TTL_S"])


def _load_scopes(username: str) -> StoredScopes:
    # A short read of its own: the view's session (a write transaction for a POST) is
    # not opened before the token has been accepted.
    with get_engine(current_app).connect() as conn:
        return conn.scalar(scopes_query(username))


def _unauthorized(message: str) -> Unauthorized:
    return Unauthorized(message, www_authenticate=WWWAuthenticate("Bearer"))


@bp.post("/token")
def token() -> tuple[dict[str, object], dict[str, str]]:
    """Exchange a username and password for a bearer token."""
    credentials = load_body(login_schema)
    config = current_app.config
    limits = LoginLimits(
        per_username=config["LOGIN_MAX_FAILURES_PER_USERNAME"],
        per_address=config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        window_s=config["LOGIN_FAILURE_WINDOW_S"],
    )
    attempt = LoginAttempt.of(credentials["username"], request.remote_addr)
    session = get_session()
    # Before anything costly: a throttled login costs no password check.
    login_throttle.check(session, limits, attempt)
    user = session.execute(
        select(User.username, User.password_hash, User.scopes).where(
            User.username == credentials["username"]
        )
    ).first()
    # A POST gets a write transaction (BEGIN IMMEDIATE on SQLite); let it go before the
    # deliberately slow password check instead of holding up every writer meanwhile.
    session.rollback()
    slot = hashing_slot(
        concurrency=config["PASSWORD_HASH_CONCURRENCY"], wait_s=config["PASSWORD_HASH_WAIT_S"]
    )
    with slot:
        # Again: attempts that failed while this one waited for a slot count too.
        login_throttle.check(session, limits, attempt)
        session.rollback()
        # Always verify, even for an unknown user, so that both take the same time.
        password_hash = user.password_hash if user else None
        verified = verify_password(password_hash, credentials["password"]) and user is not None
        if verified:
            login_throttle.record_success(session, attempt)
        else:
            login_throttle.record_failure(session, limits, attempt)
    if not verified or user is None:
        raise _unauthorized("Invalid username or password.")
    issued = issue_token(
        subject=user.username,
        scopes=user.scopes,
        secret=config["SECRET_KEY"],
        issuer=config["TOKEN_ISSUER"],
        lifetime_s=config["TOKEN_LIFETIME_S"],
    )
    body: dict[str, object] = {
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
    }
    return body, NO_STORE


def require_scope(scope: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the view only for a valid bearer token with `scope`; its claims go to `g.claims`."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            raw = bearer_token(request.headers.get("Authorization"))
            if raw is None:
                raise _unauthorized("A bearer token is required.")
            try:
                claims = decode_token(
                    raw,
                    secret=current_app.config["SECRET_KEY"],
                    issuer=current_app.config["TOKEN_ISSUER"],
                )
            except InvalidToken:
                raise _unauthorized("The token is invalid or has expired.") from None
            users: ActiveUsers = current_app.extensions[_USERS]
            backed = users.check(claims, _load_scopes)
            if backed is None:
                raise _unauthorized("The token's user no longer exists.")
            claims = backed
            if scope not in claims.scopes:
                raise Forbidden(f"This needs the {scope!r} scope.")
            g.claims = claims
            return view(*args, **kwargs)

        return guarded

    return decorator
