"""The database: one engine per app, one session per request (as in Flask's tutorial)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shop_core.database import WRITE_OPTIONS, create_sync_engine

_EXTENSION = "legacy_flask.db"
_READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class _Engines:
    read: Engine
    # The same pool; its transactions start with BEGIN IMMEDIATE on SQLite.
    write: Engine


def init_app(app: Flask) -> None:
    """Create the engine (it connects lazily) and close each request's session after it."""
    engine = create_sync_engine(app.config["DATABASE_URL"], pool_size=app.config["DB_POOL_SIZE"])
    app.extensions[_EXTENSION] = _Engines(
        read=engine, write=engine.execution_options(**WRITE_OPTIONS)
    )
    app.teardown_appcontext(close_session)


def get_engine(app: Flask) -> Engine:
    engines: _Engines = app.extensions[_EXTENSION]
    return engines.read


def get_session() -> Session:
    """The current request's session, opened on first use."""
    if "db_session" not in g:
        engines: _Engines = current_app.extensions[_EXTENSION]
        bind = engines.read if request.method in _READ_METHODS else engines.write
        # Views serialise what they just wrote; reloading it after commit would only
        # cost another query (and, on SQLite, another write lock).
        g.db_session = Session(bind, expire_on_commit=False)
    session: Session = g.db_session
    return session


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back whatever the view did not commit and return the connection to the pool."""
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


def dispose_engine(app: Flask) -> None:
    """Close the pooled connections; for whoever owns the app's lifetime (the gateway)."""
    get_engine(app).dispose()
