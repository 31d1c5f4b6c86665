"""Access tokens for the OAuth2 password flow (what /docs' Authorize button uses)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.security import OAuth2PasswordRequestForm

from shop_core.security import issue_token
from v2_fastapi.deps import SessionDep, SettingsDep
from v2_fastapi.openapi import problem_responses
from v2_fastapi.schemas.auth import Token
from v2_fastapi.services import auth

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", responses=problem_responses(401, 422, 503))
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> Token:
    """Exchange a username and password for a bearer token carrying the user's scopes."""
    user = await auth.authenticate(session, username=form.username, password=form.password)
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
