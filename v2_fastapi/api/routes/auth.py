"""Access tokens for the OAuth2 password flow (what /docs' Authorize button uses)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from shop_core.login_throttle import LoginLimits
from shop_core.security import issue_token
from v2_fastapi.deps import DatabaseDep, SettingsDep
from v2_fastapi.openapi import problem_responses
from v2_fastapi.schemas.auth import Token
from v2_fastapi.services import auth

router = APIRouter(prefix="/auth", tags=["auth"])


_BUSY = "The database is unavailable, or too many passwords are being checked at once"


@router.post("/token", responses=problem_responses(401, 422, 429, 503, descriptions={503: _BUSY}))
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    response: Response,
) -> Token:
    """Exchange a username and password for a bearer token carrying the user's scopes.

    Failed logins are limited per username and per client address: past the limit, a
    login (even with the right password) gets 429 with `Retry-After` until the window has
    passed. When too many password checks run at once, a login gets 503 with `Retry-After`.
    """
    user = await auth.authenticate(
        db,
        username=form.username,
        password=form.password,
        address=request.client.host if request.client else None,
        limits=LoginLimits.from_settings(settings),
        hash_concurrency=settings.password_hash_concurrency,
        hash_wait_s=settings.password_hash_wait_s,
    )
    if user is None:
        raise HTTPException(
            401, "Incorrect username or password.", headers={"WWW-Authenticate": "Bearer"}
        )
    issued = issue_token(
        subject=user.username,
        scopes=user.scopes,
        secret=settings.secret_key.get_secret_value(),
        issuer=settings.token_issuer,
        lifetime_s=settings.token_lifetime_s,
    )
    # RFC 6749 5.1: an answer with a token is not to be stored by any cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return Token(access_token=issued.access_token, expires_in=issued.expires_in)
