"""The Alembic history on each backend: it builds what the models say, and 0003 moves
email uniqueness onto the normalised key for a database that already has customers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from gateway.ledger.store_migrate import upgrade_control_database
from shop_core.database import create_sync_engine, temporary_postgres_database
from shop_core.emails import email_key
from shop_core.migrate import alembic_config, shop_tables_only, upgrade
from shop_core.models import Base
from tests.conftest import BACKENDS, POSTGRES_ADMIN_URL

EMAIL_KEY = "0003"
BEFORE_EMAIL_KEY = "0002"
# More than two of the migration's batches (500 rows), so that batches follow each other.
CUSTOMERS = 1100
SPELLINGS = [
    "\u01c4{n}@x.io",
    "STRASSE{n}@x.io",
    "\uff26\uff35\uff2c\uff2c{n}@x.io",
    "Plain{n}@Example.com",
]


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, of its own, per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    assert POSTGRES_ADMIN_URL is not None
    with temporary_postgres_database(POSTGRES_ADMIN_URL) as url:
        yield url


@pytest.fixture
def engine(empty_url: str) -> Iterator[Engine]:
    engine = create_sync_engine(empty_url, pool_size=1)
    yield engine
    engine.dispose()


def _add_customers(engine: Engine, emails: list[str]) -> None:
    rows = [{"name": f"Customer {n}", "email": email} for n, email in enumerate(emails)]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customers (name, email, tier, created_at, updated_at) "
                "VALUES (:name, :email, 'standard', '2026-01-01', '2026-01-01')"
            ),
            rows,
        )


def _add_order(engine: Engine, customer_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO orders (customer_id, status, total_cents, created_at) "
                "VALUES (:customer_id, 'placed', 100, '2026-01-01')"
            ),
            {"customer_id": customer_id},
        )


def _version(engine: Engine) -> str | None:
    with engine.connect() as conn:
        version: str | None = conn.scalar(text("SELECT version_num FROM alembic_version"))
    return version


def _columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("customers")}


def test_the_history_builds_what_the_models_describe(empty_url: str, engine: Engine) -> None:
    upgrade(empty_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_autogenerate_leaves_the_gateways_tables_alone(empty_url: str, engine: Engine) -> None:
    # The shop's database holds the gateway's route statuses too (shop/app.py).
    upgrade(empty_url)
    upgrade_control_database(empty_url)
    with engine.connect() as conn:
        unfiltered = MigrationContext.configure(conn, opts={"compare_type": True})
        dropped = {diff[1].name for diff in compare_metadata(unfiltered, Base.metadata)}
        assert {"gateway_route_status", "gateway_alembic_version"} <= dropped
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": shop_tables_only}
        )
        assert compare_metadata(context, Base.metadata) == []
    # What `alembic check` runs: autogenerate through the shop's env.py, which raises on any
    # operation it would write.
    command.check(alembic_config(empty_url))


def test_the_upgrade_keys_existing_customers_and_enforces_the_key(
    empty_url: str, engine: Engine
) -> None:
    upgrade(empty_url, BEFORE_EMAIL_KEY)
    emails = [SPELLINGS[n % len(SPELLINGS)].format(n=n) for n in range(CUSTOMERS)]
    _add_customers(engine, emails)
    _add_order(engine, customer_id=1)  # SQLite's copy of the table must keep it valid
    upgrade(empty_url)
    assert _version(engine) == EMAIL_KEY
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT email, email_key FROM customers ORDER BY id")).all()
        orders = conn.execute(text("SELECT customer_id FROM orders")).scalars().all()
    assert [email for email, _ in rows] == emails  # as written
    assert [key for _, key in rows] == [email_key(email) for email in emails]
    assert orders == [1]
    # Another spelling of a stored address: refused by the index, not by the application.
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customers (name, email, email_key, tier, created_at, updated_at) "
                "VALUES ('Clash', 'x', :key, 'standard', '2026-01-01', '2026-01-01')"
            ),
            {"key": email_key("\u01c60@x.io")},
        )


def test_the_upgrade_stops_at_customers_that_share_an_address(
    empty_url: str, engine: Engine
) -> None:
    upgrade(empty_url, BEFORE_EMAIL_KEY)
    # Distinct to lower() on both backends: neither folds `ß` to `ss`.
    _add_customers(engine, ["first@x.io", "STRASSE@x.io", "straße@x.io"])
    with pytest.raises(RuntimeError, match=r"2 \('STRASSE@x\.io'\), 3 \('straße@x\.io'\)"):
        upgrade(empty_url)
    # Nothing of the upgrade stayed: the old version, column and index.
    assert _version(engine) == BEFORE_EMAIL_KEY
    assert "email_key" not in _columns(engine)
    with pytest.raises(IntegrityError):  # the lower-case index still holds
        _add_customers(engine, ["FIRST@x.io"])


def test_the_downgrade_restores_the_lower_case_index(empty_url: str, engine: Engine) -> None:
    upgrade(empty_url, BEFORE_EMAIL_KEY)
    _add_customers(engine, ["Ada@x.io", "STRASSE@x.io"])
    _add_order(engine, customer_id=1)
    upgrade(empty_url)
    command.downgrade(alembic_config(empty_url), BEFORE_EMAIL_KEY)
    assert _version(engine) == BEFORE_EMAIL_KEY
    assert "email_key" not in _columns(engine)
    with engine.connect() as conn:
        assert conn.scalars(text("SELECT email FROM customers ORDER BY id")).all() == [
            "Ada@x.io",
            "STRASSE@x.io",
        ]
        assert conn.scalars(text("SELECT customer_id FROM orders")).all() == [1]
    with pytest.raises(IntegrityError):
        _add_customers(engine, ["ada@X.IO"])


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_every_migration_goes_down_and_up_again(empty_url: str, engine: Engine) -> None:
    upgrade(empty_url)
    command.downgrade(alembic_config(empty_url), "0001")
    assert "login_failures" not in _tables(engine)
    command.downgrade(alembic_config(empty_url), "base")
    assert _tables(engine) == set()
    upgrade(empty_url)
    assert _tables(engine) == set(Base.metadata.tables)
