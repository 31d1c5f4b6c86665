"""Scratch control databases for the control plane's tests, on each backend under test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.ledger.store_migrate import upgrade_control_database
from shop.settings import ShopSettings
from shop_core.database import temporary_postgres_database
from tests.conftest import BACKENDS, POSTGRES_ADMIN_URL, make_settings

__all__ = ["ADMIN_TOKEN", "BACKENDS", "control_database", "own_statuses"]

ADMIN_TOKEN = "an-admin-token-" + "t" * 32


@contextmanager
def control_database(backend: str, workdir: Path, *, migrated: bool = True) -> Iterator[str]:
    """An empty database of its own, with the control tables unless `migrated` is False."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'control.db'}"
        if migrated:
            upgrade_control_database(url)
        yield url
        return
    assert POSTGRES_ADMIN_URL is not None
    with temporary_postgres_database(POSTGRES_ADMIN_URL) as url:
        if migrated:
            upgrade_control_database(url)
        yield url


@contextmanager
def own_statuses(
    settings: ShopSettings, database_url: str, workdir: Path, **more: Any
) -> Iterator[ShopSettings]:
    """Settings of a gateway over the session's rows whose route statuses are its own (a
    control database of its own) and changed through its admin API (`ADMIN_TOKEN`): the
    session's other gateways keep serving every route from Flask meanwhile."""
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    with control_database(backend, workdir) as control_url:
        yield make_settings(
            database_url,
            carrier_url=settings.carrier_url,
            control_database_url=control_url,
            admin_token=ADMIN_TOKEN,
            **more,
        )
