"""Scratch control databases for the control plane's tests, on each backend under test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.ledger.store_migrate import upgrade_control_database
from shop_core.database import temporary_postgres_database
from tests.conftest import BACKENDS, POSTGRES_ADMIN_URL

__all__ = ["BACKENDS", "control_database"]


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
