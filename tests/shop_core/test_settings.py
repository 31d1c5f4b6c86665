"""Settings: read from GATEWAY_* once, unsafe defaults refused outside development."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shop.settings import ShopSettings
from shop_core.settings import PUBLISHED_DEVELOPMENT_SECRET


def test_settings_come_from_gateway_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LEGACY_WORKERS", "7")
    monkeypatch.setenv("GATEWAY_CARRIER_TIMEOUT_S", "0.5")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://u@db/shop")
    settings = ShopSettings()
    assert (settings.legacy_workers, settings.carrier_timeout_s) == (7, 0.5)
    assert (
        settings.legacy_config(threads=7, max_body_bytes=1024)["DATABASE_URL"]
        == "postgresql://u@db/shop"
    )


def test_the_default_database_is_a_sqlite_file_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    monkeypatch.chdir(str(tmp_path))
    assert ShopSettings().database_url == f"sqlite:///{tmp_path}/gateway.db"


@pytest.mark.parametrize("env", ["production", "test"])
def test_a_secret_must_be_set_outside_development(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.delenv("GATEWAY_SECRET_KEY", raising=False)
    with pytest.raises(ValueError, match="GATEWAY_SECRET_KEY must be set"):
        ShopSettings(env=env)
    assert ShopSettings(env=env, secret_key="s" * 40).secret_key.get_secret_value() == "s" * 40


@pytest.mark.parametrize("env", ["production", "test", "development"])
def test_the_published_development_secret_is_refused_everywhere(env: str) -> None:
    with pytest.raises(ValueError, match="GATEWAY_SECRET_KEY"):
        ShopSettings(env=env, secret_key=PUBLISHED_DEVELOPMENT_SECRET)


def test_development_without_a_secret_draws_a_random_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_SECRET_KEY", raising=False)
    first, second = (ShopSettings(env="development").secret_key.get_secret_value() for _ in "12")
    assert first != second
    assert len(first) >= 32
    assert PUBLISHED_DEVELOPMENT_SECRET not in (first, second)


SECRET = "rejected-secret-value-4b1d"
DEMO_PASSWORD = "demo-password-value-9c2e"
DATABASE_PASSWORD = "database-password-value-77aa"


def test_a_refused_secret_is_not_printed_in_the_error() -> None:
    with pytest.raises(ValidationError, match="secret_key") as refused:
        ShopSettings(secret_key=SECRET)
    # What a failed start prints.
    assert SECRET[:8] not in str(refused.value)
    assert "input_value" not in str(refused.value)


def test_a_refused_setting_prints_no_other_setting() -> None:
    # A check of the whole object (debug outside development) would print every value.
    with pytest.raises(ValidationError, match="GATEWAY_DEBUG") as refused:
        ShopSettings(
            env="production",
            debug=True,
            secret_key=SECRET + "x" * 32,
            demo_password=DEMO_PASSWORD,
            database_url=f"postgresql://shop:{DATABASE_PASSWORD}@db/shop",
        )
    # pydantic shortens long values in the middle: look for their first characters.
    for value in (SECRET, DEMO_PASSWORD, DATABASE_PASSWORD):
        assert value[:8] not in str(refused.value)
    assert "input_value" not in str(refused.value)


def test_secrets_are_not_in_the_settings_repr() -> None:
    settings = ShopSettings(secret_key=SECRET + "x" * 32, demo_password=DEMO_PASSWORD)
    for value in (SECRET, DEMO_PASSWORD):
        assert value not in repr(settings)
        assert value not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("legacy_workers", 0),
        ("carrier_timeout_s", 0),
        ("max_body_bytes", 10),
        ("env", "staging"),
        ("login_max_failures_per_username", 0),
        ("login_max_failures_per_address", 0),
        ("login_failure_window_s", 0),
        ("password_hash_concurrency", 0),
        ("password_hash_wait_s", 0),
    ],
)
def test_nonsense_values_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        ShopSettings(**{name: value})


def test_log_levels_are_checked_and_case_insensitive() -> None:
    assert ShopSettings(log_level="info").log_level == "INFO"
    with pytest.raises(ValueError, match="log_level"):
        ShopSettings(log_level="verbose")


def test_observability_settings_are_read_and_bounded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "JSON")
    monkeypatch.setenv("GATEWAY_METRICS_PORT", "9100")
    # prometheus-client's own variable, which `gateway serve --workers N` sets for its workers.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    settings = ShopSettings()
    assert (settings.log_format, settings.metrics_enabled, settings.metrics_port) == (
        "json",
        True,
        9100,
    )
    assert settings.metrics_multiprocess_dir == tmp_path
    for name, value in (("metrics_port", 0), ("metrics_port", 65536), ("log_format", "xml")):
        with pytest.raises(ValueError, match=name):
            ShopSettings(**{name: value})
