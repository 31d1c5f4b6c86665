"""Lookups and errors the resource services share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.interfaces import ORMOption

from shop_core.models import MAX_ID, Base

RowT = TypeVar("RowT", bound=Base)


def not_found(what: str, row_id: int) -> HTTPException:
    return HTTPException(404, f"{what} {row_id} not found")


def invalid(issues: list[tuple[tuple[str | int, ...], str]]) -> RequestValidationError:
    """A 422 like Pydantic's, for what only the database can tell (a missing reference)."""
    errors: list[dict[str, Any]] = [
        {"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in issues
    ]
    return RequestValidationError(errors)


async def get_or_404(
    session: AsyncSession, model: type[RowT], row_id: int, *, options: Sequence[ORMOption] = ()
) -> RowT:
    # An id outside the column's range matches no row; asking the database for it would
    # fail with an overflow instead of finding nothing.
    row = await session.get(model, row_id, options=options) if 0 < row_id <= MAX_ID else None
    if row is None:
        raise not_found(model.__name__.lower(), row_id)
    return row


async def commit_or_conflict(session: AsyncSession, conflict: HTTPException) -> None:
    """Commit, or raise `conflict` when a constraint (unique index, foreign key) refuses it.

    The constraint decides, not a look-up first: two concurrent requests both pass a look-up.
    """
    try:
        await session.commit()
    except IntegrityError as exc:
        raise conflict from exc
