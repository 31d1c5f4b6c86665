"""Lookups and errors the resource services share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Connection, Executable, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption

from shop_core.etags import PRECONDITION_FAILED, if_match_passes
from shop_core.models import MAX_ID, Base

RowT = TypeVar("RowT", bound=Base)
# A row of a Core select, whatever its columns.
AnyRow = Row[*tuple[Any, ...]]


def not_found(what: str, row_id: int) -> HTTPException:
    return HTTPException(404, f"{what} {row_id} not found")


def invalid(issues: list[tuple[tuple[str | int, ...], str]]) -> RequestValidationError:
    """A 422 like Pydantic's, for what only the database can tell (a missing reference)."""
    errors: list[dict[str, Any]] = [
        {"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in issues
    ]
    return RequestValidationError(errors)


def valid_id(row_id: int) -> bool:
    """Whether `row_id` is in the id columns' range.

    An id outside it matches no row; asking the database for it would fail with an
    overflow instead of finding nothing.
    """
    return 0 < row_id <= MAX_ID


def row_or_404(conn: Connection, by_id: Executable, what: str, row_id: int) -> AnyRow:
    """The one row `by_id` selects for `row_id` (bound as `id`), or a 404 naming `what`."""
    row = conn.execute(by_id, {"id": row_id}).one_or_none() if valid_id(row_id) else None
    if row is None:
        raise not_found(what, row_id)
    return row


def get_or_404(
    session: Session,
    model: type[RowT],
    row_id: int,
    *,
    options: Sequence[ORMOption] = (),
    for_update: bool = False,
) -> RowT:
    """The row, or a 404; `for_update` locks it until the transaction ends.

    The lock is `SELECT ... FOR UPDATE` on PostgreSQL; SQLite has no row locks and needs
    none: a write session began with BEGIN IMMEDIATE and holds the database's write lock.
    """
    lock = for_update or None
    row = (
        session.get(model, row_id, options=options, with_for_update=lock)
        if valid_id(row_id)
        else None
    )
    if row is None:
        raise not_found(model.__name__.lower(), row_id)
    return row


def check_if_match(if_match: str | None, current_etag: str) -> None:
    """412 unless If-Match (when sent) names `current_etag`, the tag of the row as locked."""
    if not if_match_passes(if_match, current_etag):
        raise HTTPException(412, PRECONDITION_FAILED)


def commit_or_conflict(session: Session, conflict: HTTPException) -> None:
    """Commit, or raise `conflict` when a constraint (unique index, foreign key) refuses it.

    The constraint decides, not a look-up first: two concurrent requests both pass a look-up.
    """
    try:
        session.commit()
    except IntegrityError as exc:
        raise conflict from exc
