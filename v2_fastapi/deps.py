"""Request dependencies as `Annotated` aliases: database, settings, carrier, scopes.

Everything comes from `app.state`, filled by the lifespan: nothing is created per request.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes
from pydantic import BeforeValidator
from sqlalchemy import Connection

from shop_core.accounts import ActiveUsers, StoredScopes, scopes_query
from shop_core.models import MAX_ID
from shop_core.security import InvalidToken, TokenClaims, decode_token
from shop_core.settings import Settings
from v2_fastapi.carrier import CarrierClient
from v2_fastapi.database import Database

SCOPES = {
    "read": "Read customers, orders and shipping quotes",
    "write": "Create, change and delete customers; place and cancel orders",
    "admin": "Create, change and delete products",
}

# Relative to the app; its OpenAPI document adds the mount path (see openapi.py).
# auto_error=False: a missing token is answered below, as problem details.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="auth/token", scopes=SCOPES, auto_error=False)


# `async def` although nothing here awaits: FastAPI runs a plain `def` dependency in its
# thread pool, a thread hop per dependency per request for a mere attribute read.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_carrier(request: Request) -> CarrierClient:
    carrier: CarrierClient = request.app.state.carrier
    return carrier


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


SettingsDep = Annotated[Settings, Depends(get_settings)]
CarrierDep = Annotated[CarrierClient, Depends(get_carrier)]
DatabaseDep = Annotated[Database, Depends(get_db)]

# An integer as JSON writes one; JSON Schema counts a whole `7.0` as an integer too.
_INTEGER = re.compile(r"-?[0-9]+(\.0+)?")


def _plain_integer(value: object) -> object:
    # Pydantic also reads " 7", "+7" and "7_0" as 7: in a URL those are not integers, and
    # the OpenAPI document says so.
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise ValueError("must be an integer written in digits")
    return value


# For every integer in a path or a query string.
InUrl = BeforeValidator(_plain_integer)

Limit = Annotated[int, Query(ge=1, le=100, description="At most this many items"), InUrl]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Skip this many items"), InUrl]


def _stored_scopes(conn: Connection, *, username: str) -> StoredScopes:
    return conn.scalar(scopes_query(username))


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def _authorize(
    security_scopes: SecurityScopes,
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> TokenClaims:
    if not token:
        raise _unauthorized("Not authenticated.")
    # From the app's state, as the database and the users below, rather than as a
    # dependency of its own: each is a step of FastAPI's dependency solving on every
    # authorized request.
    settings: Settings = request.app.state.settings
    try:
        claims = decode_token(
            token, secret=settings.secret_key.get_secret_value(), issuer=settings.token_issuer
        )
    except InvalidToken as exc:
        raise _unauthorized("The token is invalid or has expired.") from exc
    db: Database = request.app.state.db

    async def load_scopes(username: str) -> StoredScopes:
        # A read of its own, before the route's work: no write takes the single writer's
        # place (SQLite) for a token that is then refused.
        return await db.read(_stored_scopes, username=username)

    users: ActiveUsers = request.app.state.users
    backed = await users.acheck(claims, load_scopes)
    if backed is None:
        raise _unauthorized("The token's user no longer exists.")
    claims = backed
    for scope in security_scopes.scopes:
        if scope not in claims.scopes:
            raise HTTPException(403, f"This operation needs the {scope!r} scope.")
    return claims


def require_scope(scope: str) -> Any:
    """A dependency that checks the bearer token has `scope` and gives its claims.

    Use it in `dependencies=[...]` or as `Annotated[TokenClaims, require_scope(...)]`;
    the scope is listed on the operation in the OpenAPI document.
    """
    return Security(_authorize, scopes=[scope])


def resource_path(request: Request, route_name: str, **path_params: int) -> str:
    """The path of a resource for a Location header, with the prefix the app is mounted at."""
    app: FastAPI = request.app
    return f"{request.scope.get('root_path', '')}{app.url_path_for(route_name, **path_params)}"
