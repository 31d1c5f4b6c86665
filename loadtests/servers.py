"""Starting what an arm needs: the pair's set-up (the shop's: a fresh database and the
carrier stub), then the server under test.

Every process starts in a session of its own, so that stopping it takes its whole group
(gunicorn's and uvicorn's workers, Locust's forked workers) and Ctrl-C in the terminal
reaches only the runner, which then stops everything in order.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import update

from shop_core.database import create_sync_engine, temporary_postgres_database
from shop_core.migrate import upgrade
from shop_core.models import Product
from shop_core.seed import seed_demo_data

DEMO_PASSWORD = "demo"  # noqa: S105 - the seeded demo users' password, public by design
# Enough that placing orders never runs a product out during a run.
LOAD_TEST_STOCK = 1_000_000
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Pinning:
    """Which cores the server and the load generator run on (`taskset`), if any."""

    server: str | None
    loadgen: str | None

    @classmethod
    def choose(cls, enabled: bool) -> Pinning:
        cores = sorted(os.sched_getaffinity(0))
        if not enabled or len(cores) < 2 or shutil.which("taskset") is None:
            return cls(None, None)
        # A taskset list ("1" or "1,2,3"): the cores this process may use need not be contiguous.
        return cls(str(cores[0]), ",".join(str(core) for core in cores[1:]))

    def prefix(self, cores: str | None) -> list[str]:
        return ["taskset", "-c", cores] if cores else []

    def describe(self) -> str:
        if self.server is None:
            return "not pinned"
        return f"server on core {self.server}, load generator on core(s) {self.loadgen}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A child process in its own session, with its output in a log file."""

    def __init__(self, command: Sequence[str], *, log: Path, env: Mapping[str, str]) -> None:
        self.command = list(command)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file: IO[bytes] = log.open("wb")
        try:
            self.popen = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )
        except OSError:
            self._log_file.close()
            raise

    def wait(self, timeout_s: float | None = None) -> int:
        return self.popen.wait(timeout_s)

    def stop(self) -> None:
        """SIGTERM to the whole group, then SIGKILL whatever is left after a grace period."""
        try:
            if self.popen.poll() is None:
                self._signal(signal.SIGTERM)
                self.popen.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        finally:
            # Always, even when a second Ctrl-C cut the wait short: no orphans, and workers
            # of a leader that has already exited go too.
            self._signal(signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(STOP_TIMEOUT_S)
            self._log_file.close()

    def _signal(self, signum: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)

    def tail(self, lines: int = 20) -> str:
        return tail(self.log, lines)


def tail(log: Path, lines: int = 20) -> str:
    """The last lines of a log, for an error message."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(
    url: str, process: Process, timeout_s: float = READY_TIMEOUT_S, *, any_status: bool = False
) -> None:
    """Poll `url` until it answers 200 (with `any_status`, anything), the process dies, or
    the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.command[0]} exited early:\n{process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own URL
                if answer.status == 200:
                    return
        except urllib.error.HTTPError:
            if any_status:
                return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s:\n{process.tail()}")
        time.sleep(0.1)


def prepare_database(url: str) -> None:
    """Migrate and seed a fresh database, with stock that no run can use up."""
    upgrade(url)
    engine = create_sync_engine(url, pool_size=1)
    try:
        seed_demo_data(engine, password=DEMO_PASSWORD)
        with engine.begin() as conn:
            conn.execute(update(Product).values(stock=LOAD_TEST_STOCK))
    finally:
        engine.dispose()


@contextmanager
def fresh_database(postgres_url: str | None) -> Iterator[str]:
    """A migrated, seeded database of its own, gone afterwards.

    A SQLite file in a temporary directory, or, with `postgres_url`, a new database on
    that PostgreSQL server.
    """
    with ExitStack() as stack:
        if postgres_url:
            url = stack.enter_context(temporary_postgres_database(postgres_url))
        else:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loadtest-")))
            url = f"sqlite:///{scratch / 'shop.db'}"
        prepare_database(url)
        yield url


def start_carrier(stack: ExitStack, *, pinning: Pinning, latency_ms: float, log: Path) -> str:
    """Start the carrier stub (stopped with `stack`) and return its URL once it answers.

    The carrier stands in for a service elsewhere: it runs beside the load generator, not
    on the server's core.
    """
    port = free_port()
    stub = ["carrier-stub", "--port", str(port), "--latency-ms", str(latency_ms)]
    carrier = Process(
        [*pinning.prefix(pinning.loadgen), sys.executable, "-m", "shop", *stub],
        log=log / "carrier.log",
        env=os.environ,
    )
    stack.callback(carrier.stop)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/health", carrier)
    return url


@dataclass(frozen=True)
class ArmContext:
    """What a set-up hook is given for one arm."""

    workdir: Path  # for its logs
    pinning: Pinning  # helpers it starts belong beside the load generator
    postgres_url: str | None  # --database-url: a PostgreSQL server to create a database on
    carrier_latency_ms: float  # --carrier-latency-ms, for an upstream stub


# A pair's per-arm set-up (`--setup`): ready on entering, gone on leaving; it gives the
# server's extra environment variables.
SetupHook = Callable[[ArmContext], AbstractContextManager[Mapping[str, str]]]


@contextmanager
def shop_arm(context: ArmContext) -> Iterator[Mapping[str, str]]:
    """The shop's set-up: a fresh database with raised stock, and the carrier stub."""
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(context.postgres_url))
        carrier_url = start_carrier(
            stack,
            pinning=context.pinning,
            latency_ms=context.carrier_latency_ms,
            log=context.workdir,
        )
        yield shop_environment(database_url, carrier_url)


@dataclass(frozen=True)
class ServerPlan:
    """How to start the servers of a managed run."""

    pinning: Pinning
    carrier_latency_ms: float
    workers: int
    legacy_threads: int
    # None: a fresh SQLite file per arm; else a PostgreSQL server to create one on.
    postgres_url: str | None = None
    setup: SetupHook | None = shop_arm
    # `gateway serve` options naming the pair (none: the shop).
    serve_args: tuple[str, ...] = ()
    baseline_wsgi: str = "shop.legacy_wsgi:app"
    legacy_prefix: str = "/legacy"


def gateway_environment(**settings: int) -> dict[str, str]:
    """The environment of a throwaway server; `settings` become `GATEWAY_<NAME>` variables."""
    env = dict(os.environ)
    env.update(
        # Throwaway servers on throwaway data: development is fine, and a GATEWAY_ENV or
        # GATEWAY_DEBUG from the caller's shell must not change the run. One key for all
        # of a server's processes: gunicorn's workers would each draw their own.
        GATEWAY_ENV="development",
        GATEWAY_SECRET_KEY=secrets.token_urlsafe(32),
        GATEWAY_DEBUG="false",
        # Access logs would cost the server CPU that the measurement should get.
        GATEWAY_LOG_LEVEL="WARNING",
    )
    env.update({f"GATEWAY_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def shop_environment(database_url: str, carrier_url: str) -> dict[str, str]:
    return {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_CARRIER_URL": carrier_url,
        "GATEWAY_DEMO_PASSWORD": DEMO_PASSWORD,
        # The run prepared the database itself.
        "GATEWAY_MIGRATE_ON_START": "false",
        "GATEWAY_SEED_ON_START": "false",
    }


def server_environment(database_url: str, carrier_url: str, **settings: int) -> dict[str, str]:
    """A throwaway shop server's environment."""
    return gateway_environment(**settings) | shop_environment(database_url, carrier_url)


@dataclass(frozen=True)
class RunningArm:
    url: str
    server_pgid: int


@contextmanager
def started_arm(kind: str, workdir: Path, plan: ServerPlan) -> Iterator[RunningArm]:
    """The pair's set-up and the server for `kind`, running; logs go to `workdir`.

    `kind` is "gateway" (uvicorn serving both sides) or "gunicorn" (the legacy app alone).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        env = gateway_environment(legacy_workers=plan.legacy_threads)
        if plan.setup is not None:
            context = ArmContext(workdir, plan.pinning, plan.postgres_url, plan.carrier_latency_ms)
            env.update(stack.enter_context(plan.setup(context)))
        port = free_port()
        if kind == "gateway":
            command = [sys.executable, "-m", "gateway", "serve", *plan.serve_args]
            command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(plan.workers)]
            ready, any_status = "/health", False
        else:
            env["SCRIPT_NAME"] = plan.legacy_prefix
            command = [sys.executable, "-m", "gunicorn", "--workers", str(plan.workers)]
            command += ["--threads", str(plan.legacy_threads), "--bind", f"127.0.0.1:{port}"]
            command += [plan.baseline_wsgi]
            # A team's legacy app need have no health route: any answer means it serves.
            ready, any_status = plan.legacy_prefix + "/", True
        server = Process(
            plan.pinning.prefix(plan.pinning.server) + command,
            log=workdir / "server.log",
            env=env,
        )
        stack.callback(server.stop)
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url + ready, server, any_status=any_status)
        yield RunningArm(base_url, server.popen.pid)
