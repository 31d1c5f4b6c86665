"""JSON errors for everything: `{"error": {"code", "message", "fields"?}}`, never HTML."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, jsonify, request
from marshmallow import ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from shop_core.login_throttle import LoginThrottled
from shop_core.security import PasswordChecksBusy

logger = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def error_response(
    status: int, code: str, message: str, fields: dict[str, Any] | None = None
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    response = jsonify(error=error)
    response.status_code = status
    return response


def _code_for(exc: HTTPException) -> str:
    status = exc.code or 500
    return _CODES.get(status) or re.sub(r"[^a-z0-9]+", "_", exc.name.lower()).strip("_")


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    response = error_response(status, _code_for(exc), exc.description or exc.name)
    # Keep what the exception says besides its HTML body: Allow on 405, WWW-Authenticate on 401.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers.add(name, value)
    return response


def _validation_error(exc: ValidationError) -> Response:
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return error_response(400, "validation_error", "The input is not valid.", messages)


def _database_error(exc: DBAPIError) -> Response:
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        logger.error("database unavailable on %s %s", request.method, request.path, exc_info=exc)
        return error_response(503, "service_unavailable", "The database is not available.")
    if isinstance(exc, IntegrityError):
        # A constraint refused the change: a row it depends on changed since the checks.
        logger.warning("database refused a change: %s", exc.orig)
        return error_response(409, "conflict", "The change conflicts with the current data.")
    if isinstance(exc, DataError):
        # A value the database cannot hold: a number beyond its column, a NUL in a text.
        logger.warning("database refused a value: %s", exc.orig)
        return error_response(
            400, "bad_request", "The database cannot take one of the values sent."
        )
    return _internal_error(exc)


def _login_throttled(exc: LoginThrottled) -> Response:
    response = error_response(429, "too_many_requests", "Too many failed logins; try again later.")
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _password_checks_busy(exc: PasswordChecksBusy) -> Response:
    response = error_response(
        503, "service_unavailable", "Too many logins at once; try again shortly."
    )
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def _pool_timeout(exc: PoolTimeoutError) -> Response:
    logger.error("no free database connection on %s %s: %s", request.method, request.path, exc)
    return error_response(503, "service_unavailable", "The database is not available.")


def _internal_error(exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal_error", "Internal server error.")


def init_app(app: Flask) -> None:
    """Register the handlers; the most specific class wins, so Exception is the last resort."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(PoolTimeoutError, _pool_timeout)
    app.register_error_handler(LoginThrottled, _login_throttled)
    app.register_error_handler(PasswordChecksBusy, _password_checks_busy)
    app.register_error_handler(Exception, _internal_error)
