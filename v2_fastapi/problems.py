"""Every error as RFC 9457 problem details (`application/problem+json`), never HTML.

Handlers cover FastAPI's and Starlette's HTTP exceptions (so unknown paths and wrong
methods too), request validation, database conflicts and outages, throttled logins and
busy password checks, and, last, any other exception: logged with its traceback,
answered with a generic 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Match

from shop_core.login_throttle import LoginThrottled
from shop_core.security import PasswordChecksBusy

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_LOGGED_KEY = "v2_fastapi.error_logged"

Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]


class ProblemDetails(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(ProblemDetails):
    errors: list[ValidationIssue]


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(
    status: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return ProblemResponse(body, status_code=status, headers=headers)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    # The headers carry WWW-Authenticate on 401 and Allow on 405.
    headers = exc.headers
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers = {**(headers or {}), "Allow": allowed}
    return problem(exc.status_code, str(exc.detail), headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method the path has a route for.

    Starlette's 405 names only the methods of the first route whose path matched, and
    each FastAPI operation is a route of its own: `/products` would allow GET but not POST.
    """
    app: Starlette = request.app
    methods: set[str] = set()
    # The routes as the app matches them, with the prefixes of included routers applied.
    for route in iter_route_contexts(app.routes):
        if route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    # Only loc, msg and type: "input" and "ctx" may hold objects JSON cannot encode,
    # and echoing the input back serves no client.
    errors = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return problem(422, "The request is not valid: see errors.", errors=errors)


async def _integrity_error(request: Request, exc: IntegrityError) -> Response:
    # The services turn the conflicts they expect into precise messages; this is what
    # a concurrent change (a row deleted between check and write) ends up as.
    return problem(409, "The request conflicts with the current state of the data.")


async def _login_throttled(request: Request, exc: LoginThrottled) -> Response:
    headers = {"Retry-After": str(exc.retry_after_s)}
    return problem(429, "Too many failed logins; try again later.", headers=headers)


async def _password_checks_busy(request: Request, exc: PasswordChecksBusy) -> Response:
    headers = {"Retry-After": str(exc.retry_after_s)}
    return problem(503, "Too many logins at once; try again shortly.", headers=headers)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    logger.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    return problem(503, "The database is unavailable; try again later.")


async def _database_error(request: Request, exc: DBAPIError) -> Response:
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return await _database_unavailable(request, exc)
    if _is_data_error(exc):
        # A value the database cannot hold, such as a NUL in a text on PostgreSQL.
        logger.warning("database refused a value on %s: %s", request.url.path, exc.orig)
        return problem(422, "The database cannot take one of the values sent.", errors=[])
    return await _internal_error(request, exc)


def _is_data_error(exc: DBAPIError) -> bool:
    # psycopg's data errors are DataErrors; asyncpg's reach SQLAlchemy as bare DBAPIErrors
    # that carry the SQLSTATE, whose class 22 is "data exception".
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(exc, DataError) or (isinstance(sqlstate, str) and sqlstate.startswith("22"))


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises the exception after this answer, for the server to see; an
    # enclosing app with these handlers (the gateway) meets it again in the same scope.
    if not request.scope.get(_LOGGED_KEY):
        request.scope[_LOGGED_KEY] = True
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "An internal error occurred.")


_HANDLERS: dict[type[Exception], Handler] = {
    HTTPException: _http_error,
    RequestValidationError: _validation_error,
    IntegrityError: _integrity_error,
    LoginThrottled: _login_throttled,
    PasswordChecksBusy: _password_checks_busy,
    DBAPIError: _database_error,
    # No connection from the pool in time, or none to be made (asyncpg raises
    # OSError, ConnectionRefusedError among them, when the server is down).
    PoolTimeoutError: _database_unavailable,
    OSError: _database_unavailable,
    Exception: _internal_error,
}


def install_problem_handlers(app: Starlette) -> None:
    """Answer every error of `app` with problem details (the gateway's root app uses it too)."""
    for exc_class, handler in _HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
