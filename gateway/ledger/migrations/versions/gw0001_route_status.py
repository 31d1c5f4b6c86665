"""route statuses and their changes

Revision ID: gw0001
Revises:
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gw0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_route_status",
        sa.Column("route_id", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("deprecation", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sunset", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("route_id", name="pk_gateway_route_status"),
    )
    op.create_table(
        "gateway_route_change",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("route_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("before_state", sa.String(length=16), nullable=False),
        sa.Column("before_deprecation", sa.DateTime(timezone=True), nullable=True),
        sa.Column("before_sunset", sa.DateTime(timezone=True), nullable=True),
        sa.Column("after_state", sa.String(length=16), nullable=False),
        sa.Column("after_deprecation", sa.DateTime(timezone=True), nullable=True),
        sa.Column("after_sunset", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_route_change"),
    )
    op.create_index(
        "ix_gateway_route_change_route_id", "gateway_route_change", ["route_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_gateway_route_change_route_id", table_name="gateway_route_change")
    op.drop_table("gateway_route_change")
    op.drop_table("gateway_route_status")
