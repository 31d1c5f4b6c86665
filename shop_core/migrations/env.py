"""Alembic environment: the URL comes from the caller (`gateway db upgrade`) or the settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from shop_core.database import create_sync_engine
from shop_core.migrate import shop_tables_only
from shop_core.models import Base
from shop_core.settings import Settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings().database_url


def _sqlite_foreign_keys_off(connection: Connection) -> None:
    # Batch mode changes a SQLite table by copying it and dropping the old one; with
    # foreign keys on, that drop deletes (and is refused for) every row another table
    # refers to. The pragma is ignored inside a transaction, so it goes to the driver
    # before the migration's transaction begins; `_check_sqlite_foreign_keys` then
    # checks every reference before the commit.
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute("PRAGMA foreign_keys = OFF")


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        # Raised inside the transaction: nothing of the migration is committed.
        raise RuntimeError(f"the migration would leave broken foreign keys: {broken[:10]}")


if context.is_offline_mode():
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        include_name=shop_tables_only,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_sync_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                _sqlite_foreign_keys_off(connection)
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                include_name=shop_tables_only,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _check_sqlite_foreign_keys(connection)
    finally:
        engine.dispose()
