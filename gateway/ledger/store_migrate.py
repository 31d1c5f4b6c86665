"""Apply the control database's Alembic history (run by `gateway serve` before it serves,
and by `gateway routes migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config is ConfigParser-based: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_control_database(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
