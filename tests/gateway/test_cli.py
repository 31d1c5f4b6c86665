"""The command line, as a newcomer uses it: fresh directory, no configuration."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from sqlalchemy import create_engine, func, select

from gateway import cli
from shop_core.migrate import upgrade
from shop_core.models import Product, User
from shop_core.settings import PUBLISHED_DEVELOPMENT_SECRET, Settings
from tests.support import DEMO_PASSWORD, wait_for

PRODUCTION = {"GATEWAY_ENV": "production", "GATEWAY_SECRET_KEY": "a-production-secret-" + "p" * 32}


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    return env | extra


def _shop(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The shop's own command (`shop db upgrade`, `shop seed`)."""
    return subprocess.run(
        [sys.executable, "-m", "shop", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_db_upgrade_then_seed_fill_an_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    assert _shop("db", "upgrade", cwd=tmp_path, GATEWAY_DATABASE_URL=url).returncode == 0
    first = _shop("seed", cwd=tmp_path, GATEWAY_DATABASE_URL=url)
    second = _shop("seed", cwd=tmp_path, GATEWAY_DATABASE_URL=url)
    assert first.returncode == second.returncode == 0, first.stderr
    assert "demo data loaded" in first.stderr
    assert "already present" in second.stderr
    engine = create_engine(url)
    with engine.connect() as conn:
        assert set(conn.scalars(select(User.username))) == {"admin", "clerk", "viewer"}
        assert len(conn.scalars(select(Product.id)).all()) == 20
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _users(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(User)) or 0
    finally:
        engine.dispose()


def test_seed_is_refused_outside_development(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    upgrade(url)
    refused = _shop("seed", cwd=tmp_path, GATEWAY_DATABASE_URL=url, **PRODUCTION)
    assert refused.returncode != 0
    assert "demo data is refused with GATEWAY_ENV=production" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _users(url) == 0


class _NoServer:
    """Stands in for uvicorn.run: records what `gateway serve` would serve, and how each
    worker process would read its settings."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        self.worker_secrets: list[str] = []

    def __call__(self, app: Any, **options: Any) -> None:
        self.calls.append((app, options))
        # What gateway.main does in each worker process.
        self.worker_secrets += [Settings().secret_key.get_secret_value() for _ in range(2)]


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> _NoServer:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    # Whatever `gateway serve` exports for its workers is taken back afterwards.
    for name in ("GATEWAY_SECRET_KEY", "GATEWAY_CARRIER_URL", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_CARRIER_URL", "http://127.0.0.1:9")
    recorder = _NoServer()
    monkeypatch.setattr(cli.uvicorn, "run", recorder)
    return recorder


def test_serve_with_seed_is_refused_outside_development_and_changes_nothing(
    no_server: _NoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    seeding = {"GATEWAY_DATABASE_URL": url, "GATEWAY_SEED_ON_START": "true"}
    for name, value in (PRODUCTION | seeding).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match="demo data is refused with GATEWAY_ENV=production"):
        cli.main(["serve"])
    assert no_server.calls == []
    assert not (tmp_path / "shop.db").exists()


def test_serve_outside_development_does_not_seed(
    no_server: _NoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    for name, value in (PRODUCTION | {"GATEWAY_DATABASE_URL": url}).items():
        monkeypatch.setenv(name, value)
    cli.main(["serve"])
    assert len(no_server.calls) == 1
    assert _users(url) == 0


def test_workers_share_the_random_development_secret(
    no_server: _NoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    monkeypatch.setenv("GATEWAY_MIGRATE_ON_START", "false")
    monkeypatch.setenv("GATEWAY_SEED_ON_START", "false")
    cli.main(["serve", "--workers", "2"])
    ((app, options),) = no_server.calls
    assert (app, options["workers"]) == ("gateway.main:app", 2)
    first, second = no_server.worker_secrets
    assert first == second
    assert len(first) >= 32
    assert first != PUBLISHED_DEVELOPMENT_SECRET


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`gateway serve` in an empty directory, with no settings at all."""
    tmp_path = tmp_path_factory.mktemp("served")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    log: list[str] = []
    started = threading.Event()

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if "Uvicorn running on" in line:
                started.set()
        started.set()  # the process ended: stop waiting

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        assert started.wait(60), "the gateway did not start within 60 s"
        assert process.poll() is None, "".join(log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        reader.join(timeout=10)
        process.stderr.close()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM), "".join(log)
    assert any("Application shutdown complete" in line for line in log), "".join(log)
    assert (tmp_path / "gateway.db").exists()


def test_serve_alone_gives_the_newcomer_walkthrough(served: str) -> None:
    """Log in as clerk on v2, order there, see the order and the stock through legacy."""
    login = requests.post(
        f"{served}/v2/auth/token", data={"username": "clerk", "password": DEMO_PASSWORD}, timeout=10
    )
    assert login.status_code == 200, login.text
    # What production runs names no server (the tests' gateway shares its uvicorn options).
    assert "server" not in login.headers
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    product = requests.get(f"{served}/legacy/products/1", timeout=10).json()
    order = requests.post(
        f"{served}/v2/orders",
        json={"customer_id": 1, "items": [{"product_id": 1, "quantity": 2}]},
        headers=auth,
        timeout=10,
    )
    assert order.status_code == 201, order.text
    seen = requests.get(f"{served}/legacy/orders/{order.json()['id']}", headers=auth, timeout=10)
    assert seen.json() == order.json()
    after = requests.get(f"{served}/legacy/products/1", timeout=10).json()
    assert after["stock"] == product["stock"] - 2
    quote = requests.get(
        f"{served}/v2/shipping/quote",
        params={"order_id": order.json()["id"]},
        headers=auth,
        timeout=10,
    )
    assert quote.status_code == 200, quote.text
    assert quote.json()["carrier"] == "stub-express"


def test_serve_alone_refuses_tokens_signed_with_the_published_secret(served: str) -> None:
    now = int(time.time())
    claims = {"sub": "admin", "scope": "read write admin", "iss": "flask-fastapi-gateway"}
    forged = jwt.encode(
        claims | {"iat": now, "exp": now + 600}, PUBLISHED_DEVELOPMENT_SECRET, algorithm="HS256"
    )
    auth = {"Authorization": f"Bearer {forged}"}
    product = {"sku": "FORGED-1", "name": "Forged", "price": "1.00", "stock": 1}
    for prefix in ("/v2", "/legacy"):
        answer = requests.post(f"{served}{prefix}/products", json=product, headers=auth, timeout=10)
        assert answer.status_code == 401, answer.text


def test_serve_with_workers_shares_one_metrics_directory_and_serves_it(tmp_path: Path) -> None:
    """`--workers N`: one fresh prometheus-client directory for all workers, summed on the
    metrics port, and removed when the gateway stops."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    port, metrics_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--workers", "2", "--port", str(port)],
        cwd=tmp_path,
        env=_env(TMPDIR=str(temp), GATEWAY_METRICS_PORT=str(metrics_port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def metrics() -> requests.Response | None:
            assert process.poll() is None, "gateway serve exited"
            try:
                return requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
            except requests.ConnectionError:
                return None

        answer = wait_for(metrics, "the metrics port", timeout_s=60)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert len(list(temp.glob("gateway-metrics-*"))) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert not list(temp.glob("gateway-metrics-*"))
