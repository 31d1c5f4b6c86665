"""Apply the Alembic history to a database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The migration gateway keeps its route statuses in the shop's database (shop/app.py), in
# tables of its own with an Alembic history and version table of its own, all named so.
GATEWAY_TABLES = "gateway_"


def shop_tables_only(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name`: autogenerate compares the shop's tables only, so the
    gateway's are never offered for dropping (they are not in `Base.metadata`)."""
    return not (type_ == "table" and name is not None and name.startswith(GATEWAY_TABLES))


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config is ConfigParser-based: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
