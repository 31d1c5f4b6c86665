"""a route's share (percent): shadow sample rate, canary share

Revision ID: gw0002
Revises: gw0001
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gw0002"
down_revision: str | None = "gw0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows written before shares existed: a full share, what every state served until now.
FULL = sa.text("100")


def upgrade() -> None:
    with op.batch_alter_table("gateway_route_status") as table:
        table.add_column(sa.Column("share", sa.Integer(), nullable=False, server_default=FULL))
    with op.batch_alter_table("gateway_route_change") as table:
        table.add_column(
            sa.Column("before_share", sa.Integer(), nullable=False, server_default=FULL)
        )
        table.add_column(
            sa.Column("after_share", sa.Integer(), nullable=False, server_default=FULL)
        )


def downgrade() -> None:
    with op.batch_alter_table("gateway_route_change") as table:
        table.drop_column("after_share")
        table.drop_column("before_share")
    with op.batch_alter_table("gateway_route_status") as table:
        table.drop_column("share")
