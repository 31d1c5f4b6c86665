"""Alembic environment of the control database: the gateway's own history.

Its own version table, so that it lives beside a pair's own Alembic history in the same
database (the shop keeps the route statuses in its database) without either seeing the
other's revisions. The URL always comes from the caller (`gateway/ledger/store_migrate.py`).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from gateway.ledger.store_engine import WRITE, create_control_engine
from gateway.ledger.store_tables import metadata

VERSION_TABLE = "gateway_alembic_version"
# Several `gateway serve` processes (hosts) may start at once: one migrates, the others
# wait for it and then find nothing to do. A transaction-scoped PostgreSQL advisory lock
# (any constant of the gateway's own); SQLite: the write lock taken at BEGIN.
MIGRATION_LOCK = 0x6761_7465_7761_79

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("the control database's URL is given by the caller")

if context.is_offline_mode():
    context.configure(
        url=url, target_metadata=metadata, literal_binds=True, version_table=VERSION_TABLE
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_control_engine(url)
    try:
        with engine.connect().execution_options(**WRITE) as connection:
            context.configure(
                connection=connection, target_metadata=metadata, version_table=VERSION_TABLE
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                    )
                context.run_migrations()
    finally:
        engine.dispose()
