"""Alembic environment: the URL comes from the caller (`gateway db upgrade`) or the settings."""

from __future__ import annotations

from alembic import context

from shop_core.database import create_sync_engine
from shop_core.models import Base
from shop_core.settings import Settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings().database_url

if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_sync_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=Base.metadata)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
