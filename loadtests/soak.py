"""A soak: mixed reads and writes on /legacy and /v2 at once, for a while; the server stays flat.

    python -m loadtests.soak --duration 60
    python -m loadtests.soak --duration 600 --database-url postgresql://postgres@127.0.0.1/test

Starts the carrier stub and the gateway (`gateway serve`, one process) on a fresh database,
runs Locust's `LegacyUser` and `V2User` together in one headless run, and samples the
server (psutil) while it runs: resident memory, threads, open file descriptors, database
connections. The server and Locust run on different cores when `taskset` is there.

It fails (exit status 1) unless:
- Locust saw requests and no failure;
- resident memory is flat: after the warm-up, the second half's median is within
  `--rss-growth-pct` of the first half's;
- threads and descriptors stop growing: the second half's peak is at most the first
  half's plus 10 % (at least `--slack`); database connections stay within the pools
  (their size, plus as many in overflow);
- nothing is left over once the load stops: threads and descriptors at or below their
  peak under load, database connections within the pools' size, and on PostgreSQL no
  connection left "idle in transaction".
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from loadtests.results import read_final_stats
from loadtests.runs import LoadPlan, locust_command, run_locust
from loadtests.servers import Pinning, ServerPlan, started_arm, tail
from loadtests.usage import Sampler
from shop_core.database import is_sqlite, sync_url

SETTLE_S = 5.0  # after the load: time for overflow connections and idle threads to go
LOCUST_GRACE_S = 60.0


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_mib: float
    threads: int
    fds: int
    db_connections: int


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str


class Probe:
    """Reads one process's figures (psutil), and its connections to the database."""

    def __init__(self, pid: int, database_url: str) -> None:
        self.process = psutil.Process(pid)
        self.sqlite_file: str | None = None
        self._engine: Engine | None = None
        if is_sqlite(database_url):
            self.sqlite_file = os.path.realpath(make_url(database_url).database or "")
        else:
            self._engine = create_engine(sync_url(database_url), pool_size=1, max_overflow=0)
        self.started = time.monotonic()

    def sample(self) -> Sample:
        with self.process.oneshot():
            return Sample(
                at_s=time.monotonic() - self.started,
                rss_mib=round(self.process.memory_info().rss / 2**20, 1),
                threads=self.process.num_threads(),
                fds=self.process.num_fds(),
                db_connections=self.db_connections(),
            )

    def db_connections(self) -> int:
        if self.sqlite_file is not None:
            # Each SQLite connection holds the database file open (the -wal and -shm files
            # are opened once per connection too, but not counted here).
            return sum(1 for file in self.process.open_files() if file.path == self.sqlite_file)
        return self._pg_count(idle_in_transaction=False)

    def idle_in_transaction(self) -> int:
        return 0 if self._engine is None else self._pg_count(idle_in_transaction=True)

    def _pg_count(self, idle_in_transaction: bool) -> int:
        assert self._engine is not None
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
            " AND (NOT :idle_in_transaction OR state LIKE 'idle in transaction%')"
        )
        with self._engine.connect() as conn:
            count = conn.scalar(text(query), {"idle_in_transaction": idle_in_transaction})
        return int(count or 0)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _halves(samples: Sequence[Sample], warmup_s: float) -> tuple[list[Sample], list[Sample]]:
    steady = [sample for sample in samples if sample.at_s >= warmup_s]
    if len(steady) < 4:
        raise RuntimeError(f"only {len(steady)} samples after the warm-up: run longer")
    middle = len(steady) // 2
    return steady[:middle], steady[middle:]


def at_most(what: str, value: int, bound: int, shown: str) -> Check:
    return Check(what, value <= bound, f"{shown} (bound <= {bound})")


def evaluate(
    samples: Sequence[Sample],
    end: Sample,
    *,
    warmup_s: float,
    rss_growth_pct: float,
    slack: int,
    connection_limit: int,
) -> list[Check]:
    first, second = _halves(samples, warmup_s)
    rss_first = statistics.median(s.rss_mib for s in first)
    rss_second = statistics.median(s.rss_mib for s in second)
    growth = (rss_second - rss_first) / rss_first * 100
    checks = [
        Check(
            "RSS flat",
            growth < rss_growth_pct,
            f"median {rss_first:.1f} -> {rss_second:.1f} MiB ({growth:+.1f} %,"
            f" bound < {rss_growth_pct:g} %)",
        )
    ]
    for name, field in (("threads", "threads"), ("open fds", "fds")):
        peak_first = max(getattr(s, field) for s in first)
        peak_second = max(getattr(s, field) for s in second)
        # They come and go with the load (client and carrier connections; on SQLite a
        # thread per pooled connection): a little noise is allowed, a leak grows past it.
        allowed = peak_first + max(slack, peak_first // 10)
        shown = f"peak {peak_first} then {peak_second}"
        checks.append(at_most(f"{name} not growing", peak_second, allowed, shown))
        left = getattr(end, field)
        checks.append(
            at_most(f"{name} at the end", left, max(peak_first, peak_second), f"{left} left")
        )
    # The pools hold at most connection_limit connections, and as many again in overflow
    # under bursts; one more would be a connection made outside them.
    peak = max(s.db_connections for s in [*first, *second])
    left = end.db_connections
    return [
        *checks,
        at_most("DB connections within the pools", peak, 2 * connection_limit, f"peak {peak}"),
        at_most("DB connections at the end", left, connection_limit, f"{left} left"),
    ]


def _table(samples: Sequence[Sample], end: Sample, warmup_s: float) -> str:
    first, second = _halves(samples, warmup_s)
    rows = [("RSS MiB", "rss_mib"), ("threads", "threads"), ("open fds", "fds")]
    rows.append(("DB connections", "db_connections"))
    lines = [f"{'':16}{'idle':>10}{'warm':>10}{'mid':>10}{'last':>10}{'after':>10}"]
    points = [samples[0], first[0], second[0], second[-1], end]
    for name, field in rows:
        lines.append(f"{name:16}" + "".join(f"{getattr(p, field):>10g}" for p in points))
    lines.append(
        "  idle: before the load; warm: first sample after the warm-up; mid: start of the"
        " second half; last: last sample under load; after: load stopped and settled"
    )
    return "\n".join(lines)


def _options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.soak", description=__doc__)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (>= 60)")
    parser.add_argument("--users", type=int, default=20, help="Locust users, both classes")
    parser.add_argument("--user-rps", type=float, default=5.0, help="requests/s each user offers")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds left out (default: a quarter)"
    )
    parser.add_argument("--rss-growth-pct", type=float, default=10.0)
    parser.add_argument("--slack", type=int, default=2, help="threads/fds/connections of noise")
    parser.add_argument("--legacy-workers", type=int, default=10)
    parser.add_argument("--db-pool-size", type=int, default=10)
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL server to soak on (default: SQLite)"
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--out", type=Path, default=None, help="keep logs and CSVs here")
    options = parser.parse_args(argv)
    if options.duration < 60:
        parser.error("--duration must be at least 60 seconds")
    return options


def run(options: argparse.Namespace) -> int:
    pinning = Pinning.choose(options.pin)
    with ExitStack() as stack:
        workdir = options.out or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        servers = ServerPlan(
            pinning,
            carrier_latency_ms=5,
            legacy_threads=options.legacy_workers,
            postgres_url=options.database_url,
            settings={"db_pool_size": options.db_pool_size},
        )
        server = stack.enter_context(started_arm("gateway", workdir, servers))
        database_url = server.env["GATEWAY_DATABASE_URL"]
        probe = Probe(server.process.popen.pid, database_url)
        stack.callback(probe.close)

        # Both classes in one run: the two stacks share the server, as in production.
        users = options.users
        plan = LoadPlan(users, users, options.duration, rate=options.user_rps * users)
        load = locust_command(plan, server.url, workdir / "soak", ["LegacyUser", "V2User"], pinning)
        # The first sample is taken before Locust starts: the server idle.
        with Sampler(probe.sample, options.interval) as sampler:
            timeout = options.duration + LOCUST_GRACE_S
            locust_exit = run_locust(load, workdir / "locust.log", timeout)
        if server.process.popen.poll() is not None:
            raise RuntimeError(f"the gateway died:\n{tail(server.process.log)}")
        samples = sampler.samples
        time.sleep(SETTLE_S)
        end = probe.sample()
        idle_in_transaction = probe.idle_in_transaction()

        try:
            total = read_final_stats(workdir / "soak.json", prefix="")[1]
            requests, failures = total.requests, total.failures
        except ValueError:  # no requests at all: the check below says so
            requests = failures = 0
        warmup = options.warmup if options.warmup is not None else options.duration / 4
        # Each stack's pool may keep pool_size connections, the health check one, and on
        # SQLite v2 has one more for its writers.
        connection_limit = max(options.db_pool_size, options.legacy_workers)
        connection_limit += options.db_pool_size + 1 + is_sqlite(database_url)
        checks = [
            Check(
                "no failures",
                requests > 0 and failures == 0 and locust_exit == 0,
                f"{requests} requests, {failures} failures, Locust exit {locust_exit}",
            ),
            *evaluate(
                samples[1:],
                end,
                warmup_s=warmup,
                rss_growth_pct=options.rss_growth_pct,
                slack=options.slack,
                connection_limit=connection_limit,
            ),
            at_most("no idle transaction", idle_in_transaction, 0, f"{idle_in_transaction} left"),
        ]
        backend = "sqlite" if is_sqlite(database_url) else "postgresql"
        print(
            f"soak: {options.duration:g} s on {backend}, {options.users} users"
            f" (LegacyUser + V2User) at {options.user_rps:g} requests/s each;"
            f" {pinning.describe()}"
        )
        print(f"requests {requests} ({requests / options.duration:.1f}/s), failures {failures}")
        print(_table(samples, end, warmup))
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'} {check.what}: {check.detail}")
        if options.out is not None:
            print(f"logs and CSVs in {workdir}")
        return 0 if all(check.ok for check in checks) else 1


def main(argv: Sequence[str] | None = None) -> int:
    return run(_options(argv))


if __name__ == "__main__":
    sys.exit(main())
