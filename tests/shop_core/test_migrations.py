"""The Alembic history builds the schema the models describe, and each step goes back down."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from shop_core.database import create_sync_engine, is_sqlite, temporary_postgres_database
from shop_core.migrate import alembic_config, upgrade
from shop_core.models import Base
from tests.conftest import POSTGRES_ADMIN_URL


def _differences(url: str) -> list[object]:
    engine = create_sync_engine(url, pool_size=1)
    try:
        with warnings.catch_warnings(), engine.connect() as conn:
            # SQLite cannot reflect the expression index on lower(email), so it is not compared.
            warnings.filterwarnings("ignore", message=".*expression-based index")
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_sync_engine(url, pool_size=1)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@contextmanager
def _scratch_database(like: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on the same backend as `like`."""
    if is_sqlite(like):
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    assert POSTGRES_ADMIN_URL is not None
    with temporary_postgres_database(POSTGRES_ADMIN_URL) as url:
        yield url


def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    assert _differences(database_url) == []


def test_every_migration_goes_down_and_up_again(database_url: str, tmp_path: Path) -> None:
    with _scratch_database(database_url, tmp_path) as url:
        upgrade(url)
        command.downgrade(alembic_config(url), "0001")
        assert "login_failures" not in _tables(url)
        command.downgrade(alembic_config(url), "base")
        assert _tables(url) == set()
        upgrade(url)
        assert _tables(url) == set(Base.metadata.tables)
        assert _differences(url) == []
