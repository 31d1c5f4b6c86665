"""Settings: read from GATEWAY_* once, unsafe defaults refused outside development."""

from __future__ import annotations

from pathlib import Path

import pytest

from shop_core.settings import DEVELOPMENT_SECRET, Settings


def test_settings_come_from_gateway_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LEGACY_WORKERS", "7")
    monkeypatch.setenv("GATEWAY_CARRIER_TIMEOUT_S", "0.5")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://u@db/shop")
    settings = Settings()
    assert (settings.legacy_workers, settings.carrier_timeout_s) == (7, 0.5)
    assert settings.legacy_config()["DATABASE_URL"] == "postgresql://u@db/shop"


def test_the_default_database_is_a_sqlite_file_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    monkeypatch.chdir(str(tmp_path))
    assert Settings().database_url == f"sqlite:///{tmp_path}/gateway.db"


@pytest.mark.parametrize("env", ["production", "test"])
def test_the_development_secret_is_refused_outside_development(env: str) -> None:
    with pytest.raises(ValueError, match="GATEWAY_SECRET_KEY"):
        Settings(env=env, secret_key=DEVELOPMENT_SECRET)
    assert Settings(env=env, secret_key="s" * 40).secret_key == "s" * 40


def test_development_runs_on_the_default_secret() -> None:
    assert Settings(env="development").secret_key == DEVELOPMENT_SECRET


@pytest.mark.parametrize(
    ("name", "value"),
    [("legacy_workers", 0), ("carrier_timeout_s", 0), ("max_body_bytes", 10), ("env", "staging")],
)
def test_nonsense_values_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        Settings(**{name: value})


def test_log_levels_are_checked_and_case_insensitive() -> None:
    assert Settings(log_level="info").log_level == "INFO"
    with pytest.raises(ValueError, match="log_level"):
        Settings(log_level="verbose")


def test_observability_settings_are_read_and_bounded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "JSON")
    monkeypatch.setenv("GATEWAY_METRICS_PORT", "9100")
    # prometheus-client's own variable, which `gateway serve --workers N` sets for its workers.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    settings = Settings()
    assert (settings.log_format, settings.metrics_enabled, settings.metrics_port) == (
        "json",
        True,
        9100,
    )
    assert settings.metrics_multiprocess_dir == tmp_path
    for name, value in (("metrics_port", 0), ("metrics_port", 65536), ("log_format", "xml")):
        with pytest.raises(ValueError, match=name):
            Settings(**{name: value})
