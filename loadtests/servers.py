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
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from shop_core.database import create_sync_engine, temporary_postgres_database
from shop_core.migrate import upgrade
from shop_core.models import Product
from shop_core.seed import seed_demo_data

DEMO_PASSWORD = "demo"  # noqa: S105 - the seeded demo users' password, public by design
# Enough that placing orders never runs a product out during a run.
LOAD_TEST_STOCK = 1_000_000
HOST = "127.0.0.1"
SHOP_WSGI = "shop.legacy_wsgi:app"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# The gateway with every paired route served by v2 through its adapter: what a legacy
# client gets after the cutover (`gateway` serves every route with the legacy app).
GATEWAY_ON_V2 = "gateway-on-v2"


@dataclass(frozen=True)
class Pinning:
    """Which cores the server and the load generator run on (`taskset`); none: any."""

    server: tuple[int, ...] = ()
    loadgen: tuple[int, ...] = ()

    @classmethod
    def choose(cls, enabled: bool) -> Pinning:
        # The cores this process may use need not be contiguous.
        cores = tuple(sorted(os.sched_getaffinity(0)))
        if not enabled or len(cores) < 2 or shutil.which("taskset") is None:
            return cls()
        return cls(cores[:1], cores[1:])

    @staticmethod
    def prefix(cores: tuple[int, ...]) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, cores))] if cores else []

    def describe(self) -> str:
        if not self.server:
            return "not pinned"
        loadgen = ",".join(map(str, self.loadgen))
        return f"server on core {self.server[0]}, load generator on core(s) {loadgen}"


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
            raise RuntimeError(f"{process.command[0]} exited early:\n{tail(process.log)}")
        with suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200 or any_status:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s:\n{tail(process.log)}")
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


@dataclass(frozen=True)
class ArmContext:
    """What a set-up hook is given for one arm."""

    workdir: Path  # for its logs
    pinning: Pinning  # helpers it starts belong beside the load generator
    postgres_url: str | None  # --database-url: a PostgreSQL server to create a database on
    carrier_latency_ms: float  # --carrier-latency-ms, for an upstream stub
    carrier_args: tuple[str, ...] = ()  # --carrier-args: more options for the shop's stub


# A pair's per-arm set-up (`--setup`): ready on entering, gone on leaving; it gives the
# server's extra environment variables.
SetupHook = Callable[[ArmContext], AbstractContextManager[Mapping[str, str]]]


@contextmanager
def shop_arm(context: ArmContext) -> Iterator[Mapping[str, str]]:
    """The shop's set-up: a migrated, seeded database of its own with raised stock (a SQLite
    file, or with `postgres_url` a new database on that server), and the carrier stub."""
    with ExitStack() as stack:
        if context.postgres_url:
            url = stack.enter_context(temporary_postgres_database(context.postgres_url))
        else:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loadtest-")))
            url = f"sqlite:///{scratch / 'shop.db'}"
        prepare_database(url)
        # The carrier stands in for a service elsewhere: beside the load generator, not on
        # the server's core.
        carrier = start_server(
            stack,
            "carrier",
            ("--latency-ms", str(context.carrier_latency_ms), *context.carrier_args),
            env=os.environ,
            cores=context.pinning.loadgen,
            log=context.workdir / "carrier.log",
        )
        yield {
            "GATEWAY_DATABASE_URL": url,
            "GATEWAY_CARRIER_URL": carrier.url,
            "GATEWAY_DEMO_PASSWORD": DEMO_PASSWORD,
            # The run prepared the database itself.
            "GATEWAY_MIGRATE_ON_START": "false",
            "GATEWAY_SEED_ON_START": "false",
        }


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


def _listening(kind: str, port: str) -> list[str]:
    """How each kind of server listens on a port: the gateway, an app factory under uvicorn
    (the bench's bare apps), a WSGI app under gunicorn, the shop's carrier stub."""
    bind = ["--host", HOST, "--port", port]
    return {
        "gateway": ["gateway", "serve", *bind],
        GATEWAY_ON_V2: ["gateway", "serve", *bind],
        "uvicorn": ["uvicorn", "--factory", *bind, "--log-level", "warning", "--no-access-log"],
        "gunicorn": ["gunicorn", "--bind", f"{HOST}:{port}"],
        "carrier": ["shop", "carrier-stub", "--port", port],
    }[kind]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """SIGTERM and Ctrl-C unwind the runner, which stops every server it started.

    The servers run in sessions of their own, so no signal sent to the runner reaches them:
    without this, a runner stopped by SIGTERM would leave them running.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    # A shell starts background jobs with SIGINT ignored; Ctrl-C must still stop a run.
    signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass(frozen=True)
class Server:
    url: str
    process: Process
    env: Mapping[str, str]


def start_server(
    stack: ExitStack,
    kind: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cores: tuple[int, ...],
    log: Path,
    ready: str = "/health",
    any_status: bool = False,
) -> Server:
    """Start a server of `kind` on a free port (on `cores`, stopped with `stack`) and return
    it once `ready` answers."""
    if kind == GATEWAY_ON_V2:
        env = _every_paired_route_on_v2(stack, env, log)
    port = str(free_port())
    command = [sys.executable, "-m", *_listening(kind, port), *args]
    process = Process([*Pinning.prefix(cores), *command], log=log, env=env)
    stack.callback(process.stop)
    url = f"http://{HOST}:{port}"
    if kind == GATEWAY_ON_V2:
        # The gateway's own /health answers 503 until the route statuses are read: until
        # then it would serve every route with the legacy app.
        wait_ready(url + "/health", process)
    wait_ready(url + ready, process, any_status=any_status)
    return Server(url, process, env)


def _every_paired_route_on_v2(
    stack: ExitStack, env: Mapping[str, str], log: Path
) -> Mapping[str, str]:
    """The environment of a gateway whose route statuses live in a control database of its
    own (a SQLite file), with every paired route moved to `v2` there before it starts.

    Of its own, because the pair's default control database is its data's (the shop's),
    which other servers of a run may share: they must go on serving with the legacy app.
    SQLite even on PostgreSQL runs: requests read the statuses from memory, and the control
    database is only polled, so its kind does not touch what is measured.
    """
    scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="control-")))
    env = {**env, "GATEWAY_CONTROL_DATABASE_URL": f"sqlite:///{scratch / 'control.db'}"}
    command = [sys.executable, "-m", "gateway", "routes", "--actor", "loadtests", "set"]
    command += ["--all-paired", "v2", "--reason", "load test of the legacy-on-v2 arm"]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=READY_TIMEOUT_S, check=False
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    log.with_suffix(".routes.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"gateway routes set --all-paired v2 failed:\n{done.stderr}")
    return env


def legacy_door_served_by(url: str) -> dict[str, float]:
    """How many answers of the legacy door each implementation gave (`served_by`, from the
    gateway's /metrics): proof of what an arm measured."""
    counts: defaultdict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(requests.get(url + "/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == "gateway_requests_total" and sample.labels["stack"] == "legacy":
                counts[sample.labels["served_by"]] += sample.value
    return counts


def require_on_v2(server: Server) -> str:
    """What served the legacy door of a `gateway-on-v2` server, or RuntimeError when v2
    served none of it (the statuses were not served: the figures would be legacy's)."""
    counts = legacy_door_served_by(server.url)
    if not counts.get("v2"):
        raise RuntimeError(f"{server.url}: no legacy request was served by v2 ({counts})")
    return ", ".join(f"{count:,.0f} by {name}" for name, count in sorted(counts.items()))


@dataclass(frozen=True)
class ServerPlan:
    """How to start the servers of a managed run."""

    pinning: Pinning = Pinning()
    carrier_latency_ms: float = 50.0
    workers: int = 1
    legacy_threads: int = 10
    # None: a fresh SQLite file per arm; else a PostgreSQL server to create one on.
    postgres_url: str | None = None
    setup: SetupHook | None = shop_arm
    # `gateway serve` options naming the pair (none: the shop).
    serve_args: tuple[str, ...] = ()
    baseline_wsgi: str = SHOP_WSGI
    legacy_prefix: str = "/legacy"
    # More gateway settings (GATEWAY_<NAME>).
    settings: Mapping[str, int] = field(default_factory=dict)
    carrier_args: tuple[str, ...] = ()


@contextmanager
def started_arm(kind: str, workdir: Path, plan: ServerPlan) -> Iterator[Server]:
    """The pair's set-up and the server for `kind`, running; logs go to `workdir`.

    `kind` is "gateway" (uvicorn serving both sides), `GATEWAY_ON_V2` (the same, with every
    paired route served by v2), or "gunicorn" (the legacy app alone).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        env = gateway_environment(legacy_workers=plan.legacy_threads, **plan.settings)
        if plan.setup is not None:
            context = ArmContext(
                workdir, plan.pinning, plan.postgres_url, plan.carrier_latency_ms, plan.carrier_args
            )
            env.update(stack.enter_context(plan.setup(context)))
        args, ready, any_status = plan.serve_args, "/health", False
        if kind == "gunicorn":
            env["SCRIPT_NAME"] = plan.legacy_prefix
            args = ("--threads", str(plan.legacy_threads), plan.baseline_wsgi)
            # A team's legacy app need have no health route: any answer means it serves.
            ready, any_status = plan.legacy_prefix + "/", True
        yield start_server(
            stack,
            kind,
            ("--workers", str(plan.workers), *args),
            env=env,
            cores=plan.pinning.server,
            log=workdir / "server.log",
            ready=ready,
            any_status=any_status,
        )
