"""The benchmark of ratios: v2 against legacy, the gateway against bare servers, its layers,
and a legacy client after the cutover (`legacy-on-v2`) against legacy and against v2.

    python -m loadtests.bench [--rounds 3] [--duration 10] [--connections 32]
        [--database-url postgresql://...] [--only PAIR ...] [--check] [--out bench.json]

Starts a fresh database, the carrier stub (50 ms) and every server the chosen pairs need,
the servers on one core and wrk on another; warms each load up, then runs every load once
per round, round after round, so that drift on a shared machine touches both sides of a
pair alike. Prints one table of ratios of median req/s and the servers' resident memory,
and writes them as JSON. `--check` exits 1 when a target of issue 9 is missed; failed
requests always make the exit code non-zero (a figure for errors is no figure).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from loadtests import bench_plan as plan
from loadtests import usage
from loadtests.bench_plan import Load, Pair
from loadtests.servers import (
    DEMO_PASSWORD,
    GATEWAY_ON_V2,
    ArmContext,
    Pinning,
    Server,
    gateway_environment,
    require_on_v2,
    shop_arm,
    start_server,
    stop_on_signals,
)

LUA = Path(__file__).with_name("bench.lua")
# Servers at once on PostgreSQL: about 25 pooled connections each, under its default 100.
POSTGRES_MOST_SERVERS = 3
WARMUP_S = 2
RESULT_PREFIX = "BENCH-RESULT "


@dataclass
class Figures:
    """One load's rounds."""

    rps: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    failed: int = 0
    p99_ms: list[float] = field(default_factory=list)
    # The slowest answer of each round: a burst of writes that queue badly shows here first.
    max_ms: list[float] = field(default_factory=list)
    # The server's CPU time per answer, in µs: unlike req/s, other work on the machine
    # does not move it, so its ratios hold where a shared machine makes req/s wander.
    cpu_us: list[float] = field(default_factory=list)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _post(url: str, **request: Any) -> Any:
    answer = requests.post(url, timeout=30, **request)
    answer.raise_for_status()
    return answer.json()


def _token_and_order(gateway_url: str) -> tuple[str, int]:
    """A token (valid on every server: they share the key) and an order to read and quote."""
    form = {"username": "clerk", "password": DEMO_PASSWORD}
    login = _post(f"{gateway_url}/v2/auth/token", data=form)
    authorization = f"Bearer {login['access_token']}"
    headers = {"Content-Type": "application/json", "Authorization": authorization}
    order = _post(f"{gateway_url}/v2/orders", data=plan.ORDER_BODY, headers=headers)
    return authorization, int(order["id"])


def _wrk(
    load: Load, url: str, *, seconds: float, connections: int, authorization: str, order: int,
    pinning: Pinning,
) -> dict[str, Any]:  # fmt: skip
    command = [*pinning.prefix(pinning.loadgen), "wrk", "-t1", f"-c{connections}"]
    command += [f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(LUA)]
    command += [url + load.url_path(order), "--", load.method]
    command += [authorization if load.token else "-", load.body or "-"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError(f"wrk gave no result ({done.returncode}):\n{done.stdout}{done.stderr}")


def _cpu_s(server: Server) -> float:
    """CPU seconds the server's processes have used (gunicorn's master and worker together)."""
    with suppress(psutil.Error):
        return usage.tree_cpu_s(server.process.popen.pid)
    return 0.0


def _rss_mb(server: Server) -> float:
    """Resident memory of the server's processes (gunicorn's master and worker together)."""
    with suppress(psutil.Error):
        return usage.tree_rss(server.process.popen.pid)[0] / usage.MIB
    return 0.0


def build_report(
    pairs: list[Pair], figures: dict[Load, Figures], database: str, rss: dict[str, float]
) -> dict[str, Any]:
    rows = []
    for pair in pairs:
        over = figures[pair.numerator]
        top = _median(over.rps)
        if isinstance(pair.denominator, Load):
            under = figures[pair.denominator]
            bottom, label = _median(under.rps), pair.denominator.label()
            # Requests per CPU second, over the same of the other load: the ratio req/s
            # would have if each server had its core to itself (None against the ideal).
            mine, theirs = _median(over.cpu_us), _median(under.cpu_us)
            cpu_ratio = round(theirs / mine, 3) if mine and theirs else None
        else:
            bottom, label, cpu_ratio = pair.denominator, "ideal", None
        ratio = top / bottom if bottom else 0.0
        target = pair.targets.get(database)
        rows.append(
            {
                "name": pair.name,
                "title": pair.title,
                "numerator": {"load": pair.numerator.label(), "rps": round(top, 1)},
                "denominator": {"load": label, "rps": round(bottom, 1)},
                "ratio": round(ratio, 3),
                "cpu_ratio": cpu_ratio,
                "target": target,
                "met": None if target is None else ratio >= target,
            }
        )
    loads = [
        {
            "load": load.label(),
            "rps": [round(value, 1) for value in figure.rps],
            "median_rps": round(_median(figure.rps), 1),
            "p99_ms": [round(value, 1) for value in figure.p99_ms],
            "max_ms": [round(value, 1) for value in figure.max_ms],
            "cpu_us_per_request": [round(value, 1) for value in figure.cpu_us],
            "rss_mb": [round(value, 1) for value in figure.rss_mb],
            "failed_requests": figure.failed,
        }
        for load, figure in figures.items()
    ]
    return {
        "database": database,
        "pairs": rows,
        "loads": loads,
        "peak_rss_mb": {server: round(value, 1) for server, value in rss.items()},
        "targets_missed": [row["name"] for row in rows if row["met"] is False],
        "failed_requests": sum(figure.failed for figure in figures.values()),
    }


def _table(report: dict[str, Any]) -> str:
    lines = [
        f"| pair | req/s | over req/s | ratio | ratio by CPU | target ({report['database']}) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in report["pairs"]:
        target = "" if row["target"] is None else f"≥ {row['target']:.1f}"
        verdict = {True: " met", False: " MISSED", None: ""}[row["met"]]
        by_cpu = "" if row["cpu_ratio"] is None else f"{row['cpu_ratio']:.2f}"
        lines.append(
            f"| {row['title']} | {row['numerator']['rps']:,.0f} | "
            f"{row['denominator']['rps']:,.0f} | {row['ratio']:.2f} | {by_cpu} | "
            f"{target}{verdict} |"
        )
    # Tail latency, median of the rounds: POST /orders is a burst of --connections
    # concurrent writes, whose slowest answers show how writers queue for the database.
    lines += ["", "| load | p99 (ms) | max (ms) |", "|---|---:|---:|"]
    lines += [
        f"| {load['load']} | {_median(load['p99_ms']):,.1f} | {_median(load['max_ms']):,.1f} |"
        for load in report["loads"]
    ]
    lines += ["", "| server | peak RSS after load (MiB) |", "|---|---:|"]
    lines += [f"| {server} | {value:,.0f} |" for server, value in report["peak_rss_mb"].items()]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every load (median)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load per round")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: a SQLite file)")
    parser.add_argument("--only", nargs="+", choices=plan.PAIR_NAMES, metavar="PAIR",
                        help=f"these pairs only: {', '.join(plan.PAIR_NAMES)}")  # fmt: skip
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="the JSON report")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    stop_on_signals()
    try:
        return _bench(_parser().parse_args(argv))
    except KeyboardInterrupt:
        print("interrupted: every server was stopped", file=sys.stderr)
        return 130


def _bench(args: argparse.Namespace) -> int:
    if args.rounds < 1 or args.duration < 1 or args.connections < 1:
        _parser().error("--rounds, --duration and --connections must be at least 1")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (`make bench` does it)")
    pairs = plan.select(args.only)
    database = "postgresql" if args.database_url else "sqlite"
    pinning = Pinning.choose(True)
    most = POSTGRES_MOST_SERVERS if args.database_url else len(plan.SERVERS)
    figures = {load: Figures() for load in plan.loads_of(pairs)}
    rss: dict[str, float] = {}
    for group in plan.groups(pairs, most):
        _measure(args, group, figures, rss, pinning)
    report = build_report(pairs, figures, database, rss)
    report |= {
        "rounds": args.rounds,
        "duration_s": args.duration,
        "connections": args.connections,
        "pinning": pinning.describe(),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(_table(report))
    print(f"written to {args.out}")
    return exit_code(report, check=args.check)


def _measure(
    args: argparse.Namespace,
    pairs: list[Pair],
    figures: dict[Load, Figures],
    rss: dict[str, float],
    pinning: Pinning,
) -> None:
    """Start the servers the pairs need, run their loads round after round, stop them."""
    loads = plan.loads_of(pairs)
    servers = plan.servers_of(pairs)
    database = "postgresql" if args.database_url else "sqlite"
    print(f"{len(loads)} loads on {len(servers)} servers, {database}, {pinning.describe()}")
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        context = ArmContext(logs, pinning, args.database_url, plan.CARRIER_LATENCY_MS)
        env = gateway_environment() | dict(stack.enter_context(shop_arm(context)))
        started: dict[str, Server] = {}
        for number, name in enumerate(servers):
            kind, arguments, extra = plan.SERVERS[name]
            started[name] = start_server(
                stack, kind, arguments, env=env | extra, cores=pinning.server,
                log=logs / f"server-{number}.log", ready=plan.ready_path(name),
            )  # fmt: skip
        authorization, order = _token_and_order(started[plan.GATEWAY].url)
        for round_number in range(args.rounds + 1):
            warming = round_number == 0
            for load in loads:
                server = started[load.server]
                seconds = min(WARMUP_S, args.duration) if warming else args.duration
                cpu_before = _cpu_s(server)
                result = _wrk(
                    load, server.url, seconds=seconds,
                    connections=load.connections or args.connections,
                    authorization=authorization, order=order, pinning=pinning,
                )  # fmt: skip
                failed = result["status_errors"] + result["socket_errors"]
                # A load that no answer completed is a failure too, not a figure of 0.
                failed += 0 if result["requests"] else 1
                figure = figures[load]
                figure.failed += failed
                if not warming:
                    used_s = _cpu_s(server) - cpu_before
                    figure.cpu_us.append(used_s / max(result["requests"], 1) * 1e6)
                    figure.rps.append(result["rps"])
                    figure.p99_ms.append(result["p99_ms"])
                    figure.max_ms.append(result["max_ms"])
                    figure.rss_mb.append(_rss_mb(server))
                    rss[load.server] = max(rss.get(load.server, 0.0), figure.rss_mb[-1])
                print(
                    f"{'warm-up' if warming else f'round {round_number}'}: {load.label()}: "
                    f"{result['rps']:,.0f} req/s" + (f", {failed} FAILED" if failed else ""),
                    flush=True,
                )
        for name, server in started.items():
            if plan.SERVERS[name][0] == GATEWAY_ON_V2:
                print(f"{name}: its legacy door answered {require_on_v2(server)}")


def exit_code(report: dict[str, Any], *, check: bool) -> int:
    """1 when requests failed (the figures are not valid) or, with `check`, a target missed."""
    if report["failed_requests"]:
        print(f"{report['failed_requests']} requests failed: the figures are not valid")
        return 1
    if check and report["targets_missed"]:
        print(f"targets missed: {', '.join(report['targets_missed'])}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
