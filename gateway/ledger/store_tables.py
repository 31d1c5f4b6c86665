"""The control database's tables: each route's status, and every change of it.

The gateway's own tables, beside whatever else the database holds (the shop keeps them in
its own database), with an Alembic history of their own (`gateway/ledger/migrations`,
version table `gateway_alembic_version`). A route that has no row is `legacy`, unannounced,
with a full share.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, text
from sqlalchemy.types import TypeDecorator

ROUTE_ID_LENGTH = 200
STATE_LENGTH = 16
ACTOR_LENGTH = 200
# Rows written before shares existed read as a full share (gw0002).
SHARE_DEFAULT = "100"

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend: SQLite keeps no time zone, so it is put back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the control database stores aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


route_status = Table(
    "gateway_route_status",
    metadata,
    Column("route_id", String(ROUTE_ID_LENGTH), primary_key=True),
    Column("state", String(STATE_LENGTH), nullable=False),
    Column("deprecation", UtcDateTime(), nullable=True),
    Column("sunset", UtcDateTime(), nullable=True),
    Column("share", Integer, nullable=False, server_default=text(SHARE_DEFAULT)),
    Column("updated_at", UtcDateTime(), nullable=False),
)

route_change = Table(
    "gateway_route_change",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("route_id", String(ROUTE_ID_LENGTH), nullable=False, index=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(ACTOR_LENGTH), nullable=False),
    Column("reason", Text, nullable=False),
    Column("before_state", String(STATE_LENGTH), nullable=False),
    Column("before_deprecation", UtcDateTime(), nullable=True),
    Column("before_sunset", UtcDateTime(), nullable=True),
    Column("before_share", Integer, nullable=False, server_default=text(SHARE_DEFAULT)),
    Column("after_state", String(STATE_LENGTH), nullable=False),
    Column("after_deprecation", UtcDateTime(), nullable=True),
    Column("after_sunset", UtcDateTime(), nullable=True),
    Column("after_share", Integer, nullable=False, server_default=text(SHARE_DEFAULT)),
)
