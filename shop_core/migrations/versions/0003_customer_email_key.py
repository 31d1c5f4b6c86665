"""customers.email_key: email uniqueness on the normalised address

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000

The unique index on `lower(email)` folded only ASCII on SQLite, and no database's
`lower()` knows compatibility forms or full case folding: `Ǆ@x.io` and `ǆ@x.io`, or
`STRASSE@x.io` and `straße@x.io`, could be two customers. The key is computed in Python
(`shop_core.emails.email_key`, the function both stacks use) and the unique index moves
to it. Existing rows get their key in batches, so that a large table is never held in
memory at once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shop_core.emails import email_key

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH_SIZE = 500

_customers = sa.table(
    "customers",
    sa.column("id", sa.Integer()),
    sa.column("email", sa.String()),
    sa.column("email_key", sa.Text()),
)


def _backfill(connection: sa.Connection) -> None:
    """Every row's key, a batch of rows at a time, in id order."""
    last_id = 0
    update = (
        sa.update(_customers)
        .where(_customers.c.id == sa.bindparam("row_id"))
        .values(email_key=sa.bindparam("key"))
    )
    while True:
        rows = connection.execute(
            sa.select(_customers.c.id, _customers.c.email)
            .where(_customers.c.id > last_id)
            .order_by(_customers.c.id)
            .limit(BATCH_SIZE)
        ).all()
        if not rows:
            return
        connection.execute(
            update, [{"row_id": id_, "key": email_key(email)} for id_, email in rows]
        )
        last_id = rows[-1].id


def _refuse_clashes(connection: sa.Connection) -> None:
    """Stop, naming the rows, if two customers already share an address once normalised.

    The unique index would refuse them anyway, with a message that names no customer;
    merging or renaming customers is for people to decide, not for a migration.
    """
    clashes = connection.execute(
        sa.select(_customers.c.email_key, sa.func.count())
        .group_by(_customers.c.email_key)
        .having(sa.func.count() > 1)
        .limit(20)
    ).all()
    if not clashes:
        return
    keys = [key for key, _count in clashes]
    rows = connection.execute(
        sa.select(_customers.c.id, _customers.c.email)
        .where(_customers.c.email_key.in_(keys))
        .order_by(_customers.c.email_key, _customers.c.id)
    ).all()
    listed = ", ".join(f"{id_} ({email!r})" for id_, email in rows)
    raise RuntimeError(
        "Customers share an email address once case and compatibility forms are folded: "
        f"{listed}. Change the email of all but one of each group, then upgrade again."
    )


def upgrade() -> None:
    connection = op.get_bind()
    # Gone before the batch below: SQLite cannot reflect an index on an expression, and
    # the batch copies the table by reflecting it.
    op.drop_index("uq_customers_email_lower", table_name="customers")
    op.add_column("customers", sa.Column("email_key", sa.Text(), nullable=True))
    _backfill(connection)
    _refuse_clashes(connection)
    # SQLite cannot make a column NOT NULL in place: batch mode copies the table (env.py
    # turns SQLite's foreign keys off for that, and checks them all before the commit).
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("email_key", existing_type=sa.Text(), nullable=False)
        batch.create_index("uq_customers_email_key", ["email_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("uq_customers_email_key")
        batch.drop_column("email_key")
    op.create_index("uq_customers_email_lower", "customers", [sa.text("lower(email)")], unique=True)
