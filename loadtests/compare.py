"""Run the same load against `/legacy` and `/v2` (and the legacy app under gunicorn, and the
legacy clients with every paired route served by v2) in turn.

    python -m loadtests.compare --users 20 --spawn-rate 10 --run-time 20s --out DIR
    python -m loadtests.compare -f LOCUSTFILE --legacy IMPORT --v2 IMPORT   # any app pair

Without `--host` it starts what each arm needs: the pair's set-up (the shop's: a fresh
database and a carrier stub) and the server, pinned to a core apart from Locust's. It
writes each arm's Locust reports and `comparison.json`, `comparison.md` and
`comparison.html` into `--out`, and exits non-zero when an operation fails a threshold (1)
or the run could not be made (2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pkgutil
import platform
import re
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from loadtests.html_report import html_page
from loadtests.report import ON_V2, build_comparison, markdown
from loadtests.results import ArmResult
from loadtests.runs import (
    LOCUSTFILE,
    MODES,
    Arm,
    LoadPlan,
    LoadRunError,
    parse_timespan,
    read_arm,
    run_load,
)
from loadtests.schema import ArmSummary, Comparison, Thresholds
from loadtests.servers import (
    GATEWAY_ON_V2,
    SHOP_WSGI,
    Pinning,
    ServerPlan,
    SetupHook,
    require_on_v2,
    shop_arm,
    started_arm,
    stop_on_signals,
)
from loadtests.shadow_arm import (
    admin_token,
    shadow_results,
    start_shadowing,
    with_admin_token,
)
from loadtests.shadow_report import SHADOW

# `gateway serve` options that name a team's pair, passed on as given.
_SERVE_OPTIONS = ("legacy", "v2", "legacy_prefix", "v2_prefix", "legacy_errors", "v2_errors")
EXIT_PASS, EXIT_THRESHOLD, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
REPORTS = ("comparison.json", "comparison.md", "comparison.html")
# uvicorn's "ERROR:", logging's "ERROR name:", gunicorn's "[ERROR]", and tracebacks.
_ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|^Traceback")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows defaults where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, [], argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


_THRESHOLD_HELP = {
    "max_p95_ratio": "rate mode: v2 p95 may be at most legacy p95 x this (+ the slack)",
    "p95_slack_ms": "rate mode: milliseconds v2 p95 may exceed that by",
    "max_failure_ratio": "v2 failures / requests allowed per operation",
    "min_rps_ratio": "ramp mode: v2 req/s must be at least legacy req/s x this",
    "min_requests": "operations with fewer requests in an arm: only failures judged",
    "max_shadow_p95_ratio": f"{SHADOW}'s p95 may be at most legacy p95 x this (+ the slack)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.compare", description=__doc__, formatter_class=_HelpFormatter
    )
    pair = parser.add_argument_group("the pair (default: the shop)")
    pair.add_argument("-f", "--locustfile", type=Path, default=LOCUSTFILE, help="the pair's flows")
    pair.add_argument("--legacy-user", default="LegacyUser", help="its legacy user class")
    pair.add_argument("--v2-user", default="V2User", help="its v2 user class")
    pair.add_argument("--legacy", metavar="IMPORT", help="gateway serve --legacy: the WSGI app")
    pair.add_argument("--v2", metavar="IMPORT", help="gateway serve --v2: the ASGI app")
    pair.add_argument("--legacy-prefix", default="/legacy", help="where legacy is served")
    pair.add_argument("--v2-prefix", default="/v2", help="where v2 is served")
    pair.add_argument("--legacy-errors", metavar="IMPORT", help="gateway serve --legacy-errors")
    pair.add_argument("--v2-errors", metavar="IMPORT", help="gateway serve --v2-errors")
    pair.add_argument(
        "--check", metavar="NAME=IMPORT", action="append", default=[], help="gateway serve --check"
    )
    pair.add_argument(
        "--setup",
        metavar="IMPORT",
        help="per-arm set-up: a callable (loadtests.servers.ArmContext) -> context manager "
        "yielding the server's extra environment (default: the shop's, without --legacy/--v2)",
    )
    pair.add_argument(
        "--baseline-wsgi",
        metavar="IMPORT",
        default=SHOP_WSGI,
        help="the legacy app for gunicorn in the baseline arm",
    )
    target = parser.add_argument_group("what to load")
    target.add_argument("--host", help="a running gateway (default: start one per arm)")
    target.add_argument("--baseline", action="store_true", help="add the gunicorn arm")
    target.add_argument("--baseline-host", help="a running legacy app for the baseline arm")
    target.add_argument(
        "--on-v2",
        action="store_true",
        help=f"add the {ON_V2} arm: the legacy users against a gateway with every paired "
        "route moved to v2 (`gateway routes set --all-paired v2`)",
    )
    target.add_argument(
        "--shadow",
        action="store_true",
        help=f"add the {SHADOW} arm: the legacy users against a gateway with routes in "
        "shadow at 100 %% (set through its admin API), and the shadow results",
    )
    target.add_argument(
        "--shadow-routes",
        nargs="+",
        default=[],
        metavar="ID",
        help="the routes to shadow (implies --shadow; default: every paired GET route)",
    )
    target.add_argument(
        "--carrier-latency-ms", type=float, default=50.0, help="the carrier stub's latency"
    )
    target.add_argument(
        "--carrier-args",
        type=shlex.split,
        default=[],
        help="more options for the carrier stub, e.g. '--quota-rps 50 --failure-rate 0.33'",
    )
    target.add_argument("--server-workers", type=int, default=1, help="server processes")
    target.add_argument(
        "--database-url",
        help="a PostgreSQL server to create each arm's database on (default: SQLite files)",
    )
    target.add_argument(
        "--legacy-threads", type=int, default=10, help="a2wsgi threads / gunicorn threads"
    )
    target.add_argument("--no-pin", action="store_true", help="do not pin cores with taskset")
    load = parser.add_argument_group("the load (the same for every arm)")
    load.add_argument(
        "--mode", choices=MODES, default="rate", help="rate: fixed arrival rate; ramp: saturation"
    )
    load.add_argument("--users", type=int, default=20, help="(ramp: at the last step)")
    load.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    load.add_argument("--run-time", default="20s", help="measured time per arm, e.g. 20s, 2m")
    load.add_argument(
        "--warmup-max",
        type=int,
        default=120,
        help="seconds the warm-up (until every user is set up) may take; 0: no warm-up",
    )
    load.add_argument("--rate", type=float, help="rate mode: req/s offered (default: 5 per user)")
    load.add_argument("--ramp-steps", type=int, default=5, help="ramp mode: user-count steps")
    load.add_argument("--processes", type=int, default=1, help="Locust processes per arm")
    load.add_argument("--tags", nargs="+", default=[], help="only these flows (locustfile tags)")
    limits = parser.add_argument_group("thresholds (a failed one makes the exit code 1)")
    defaults = Thresholds()
    for name, text in _THRESHOLD_HELP.items():
        default = getattr(defaults, name)
        limits.add_argument(
            f"--{name.replace('_', '-')}", type=type(default), default=default, help=text
        )
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, help="(default: loadtest-reports/<time>)")
    output.add_argument(
        "--report-only",
        action="store_true",
        help="judge and report again from the results already in --out (new thresholds)",
    )
    return parser


def _arms(args: argparse.Namespace) -> dict[str, Arm]:
    legacy, v2 = args.legacy_prefix, args.v2_prefix
    return {
        "legacy": Arm("legacy", args.legacy_user, legacy, "gateway", "WSGI via a2wsgi, gateway"),
        "v2": Arm("v2", args.v2_user, v2, "gateway", "ASGI in the gateway"),
        "baseline": Arm("baseline", args.legacy_user, legacy, "gunicorn", "WSGI under gunicorn"),
        ON_V2: Arm(ON_V2, args.legacy_user, legacy, GATEWAY_ON_V2, "legacy URLs, v2 via adapters"),
        SHADOW: Arm(SHADOW, args.legacy_user, legacy, "gateway", "legacy, v2 shadowing it"),
    }


def _team_pair(args: argparse.Namespace) -> bool:
    return args.legacy is not None or args.v2 is not None


def _setup_hook(args: argparse.Namespace) -> SetupHook | None:
    if args.setup is not None:
        hook: SetupHook = pkgutil.resolve_name(args.setup)
        return hook
    return None if _team_pair(args) else shop_arm


def _serve_args(args: argparse.Namespace) -> tuple[str, ...]:
    given = [(name, getattr(args, name)) for name in _SERVE_OPTIONS]
    options = [("check", check) for check in args.check]
    # The prefixes only when they are not the gateway's defaults, so the shop stays the default.
    if not _team_pair(args):
        given = [(name, value) for name, value in given if not name.endswith("prefix")]
    return tuple(
        part
        for name, value in given + options
        if value is not None
        for part in (f"--{name.replace('_', '-')}", value)
    )


def _servers_text(args: argparse.Namespace) -> str:
    if args.host is not None:
        baseline = f", baseline {args.baseline_host}" if args.baseline_host else ""
        return f"external: {args.host}{baseline}"
    if _team_pair(args):
        setup = f"after set-up {args.setup}" if args.setup else "with no set-up"
        text = f"started per arm {setup}: gateway serve {' '.join(_serve_args(args))}"
    else:
        database = "PostgreSQL" if args.database_url else "SQLite"
        text = f"started per arm on a fresh {database} database: gateway"
    text += (
        f" under uvicorn ({args.server_workers} worker(s), {args.legacy_threads} a2wsgi threads)"
    )
    if "baseline" in _arm_names(args):
        text += (
            f", gunicorn {args.baseline_wsgi} "
            f"({args.server_workers} worker(s) x {args.legacy_threads} threads)"
        )
    if ON_V2 in _arm_names(args):
        text += f"; {ON_V2}: the gateway with every paired route in v2"
    if SHADOW in _arm_names(args):
        routes = ", ".join(args.shadow_routes) or "every paired GET route"
        text += f"; {SHADOW}: the gateway with {routes} in shadow at 100 %"
    if _team_pair(args):
        return text
    stub = " ".join(args.carrier_args)
    return (
        text + f"; carrier stub at {args.carrier_latency_ms:g} ms" + (f" ({stub})" if stub else "")
    )


def _settings(args: argparse.Namespace, plan: LoadPlan, pinning: Pinning) -> dict[str, Any]:
    managed = args.host is None
    loadgen = ",".join(map(str, pinning.loadgen)) or "any"
    return dataclasses.asdict(plan) | {
        "user_rps": round(plan.user_rps, 4),
        "tags": list(plan.tags),
        "locustfile": str(args.locustfile),
        "user_classes": {"legacy": args.legacy_user, "v2": args.v2_user},
        "host": args.host,
        "baseline_host": args.baseline_host,
        "carrier_latency_ms": args.carrier_latency_ms if managed and not _team_pair(args) else None,
        "servers": _servers_text(args),
        "pinning": pinning.describe()
        if managed
        else f"Locust on core(s) {loadgen}; the servers are not the runner's",
        "pinned": managed and bool(pinning.server),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "machine": f"{platform.system()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, Locust {version('locust')}",
    }


def _arm_names(args: argparse.Namespace) -> list[str]:
    names = ["legacy", "v2"]
    if args.baseline or args.baseline_host:
        names.append("baseline")
    if args.on_v2:
        names.append(ON_V2)
    if args.shadow or args.shadow_routes:
        names.append(SHADOW)
    return names


def _run_arms(args: argparse.Namespace, plan: LoadPlan, pinning: Pinning) -> dict[str, ArmResult]:
    servers = ServerPlan(
        pinning,
        args.carrier_latency_ms,
        args.server_workers,
        args.legacy_threads,
        postgres_url=args.database_url,
        setup=_setup_hook(args),
        serve_args=_serve_args(args),
        baseline_wsgi=args.baseline_wsgi,
        legacy_prefix=args.legacy_prefix,
        carrier_args=tuple(args.carrier_args),
    )
    arms = _arms(args)
    results: dict[str, ArmResult] = {}
    for name in _arm_names(args):
        arm = arms[name]
        external = args.baseline_host if name == "baseline" else args.host
        print(
            f"[{name}] {arm.label}: warm-up, then {plan.mode} load for {plan.run_time_s} s",
            flush=True,
        )
        if external:
            results[name] = run_load(plan, arm, external.rstrip("/"), args.out, pinning)
            continue
        if name == SHADOW:
            results[name] = _run_shadow_arm(args, plan, pinning, arm, servers)
            continue
        with started_arm(arm.server, args.out / "servers" / name, servers) as running:
            pid = running.process.popen.pid
            results[name] = run_load(plan, arm, running.url, args.out, pinning, pid)
            if arm.server == GATEWAY_ON_V2:
                print(f"[{name}] its legacy door answered {require_on_v2(running)}", flush=True)
    return results


def _run_shadow_arm(
    args: argparse.Namespace, plan: LoadPlan, pinning: Pinning, arm: Arm, servers: ServerPlan
) -> ArmResult:
    """The legacy load against a gateway shadowing the chosen routes, and what it found."""
    token = admin_token()
    servers = dataclasses.replace(servers, setup=with_admin_token(servers.setup, token))
    with started_arm(arm.server, args.out / "servers" / arm.name, servers) as running:
        shadowed = start_shadowing(running.url, token, args.shadow_routes)
        print(f"[{arm.name}] in shadow at 100 %: {', '.join(shadowed)}", flush=True)
        pid = running.process.popen.pid
        result = run_load(plan, arm, running.url, args.out, pinning, pid)
        result.summary.shadow = shadow_results(running.url, token, shadowed)
    return result


def _server_errors(out: Path, comparison: Comparison) -> Comparison:
    """Count the error lines each managed server logged: a stack can fail without a 5xx."""
    arms = dict(comparison.arms)
    for arm, summary in arms.items():
        log = out / "servers" / arm / "server.log"
        if log.exists():
            lines = log.read_text(errors="replace").splitlines()
            errors = sum(1 for line in lines if _ERROR_LINE.search(line))
            found = {"server_log": str(log.relative_to(out)), "server_error_lines": errors}
            arms[arm] = summary.model_copy(update=found)
    return comparison.model_copy(update={"arms": arms})


def _report(
    args: argparse.Namespace, settings: dict[str, Any], results: dict[str, ArmResult]
) -> int:
    limits = Thresholds(**{name: getattr(args, name) for name in _THRESHOLD_HELP})
    comparison = _server_errors(
        args.out, build_comparison(settings["mode"], settings, results, limits)
    )
    text = markdown(comparison)
    (args.out / "comparison.json").write_text(comparison.model_dump_json(indent=2) + "\n")
    (args.out / "comparison.md").write_text(text)
    (args.out / "comparison.html").write_text(html_page(comparison, text))
    print(text)
    print("Reports: " + ", ".join(str(args.out / name) for name in REPORTS))
    return EXIT_PASS if comparison.verdict == "pass" else EXIT_THRESHOLD


def _report_again(args: argparse.Namespace) -> int:
    previous = json.loads((args.out / "comparison.json").read_text())
    results = {}
    arms = _arms(args)
    run_time_s = previous["settings"]["run_time_s"]
    for name, values in previous["arms"].items():
        summary = ArmSummary.model_validate(values)
        # The prefixes the run used, whatever this command line says.
        arm = dataclasses.replace(arms[name], prefix=summary.prefix or arms[name].prefix)
        results[name] = read_arm(arm, summary.host, args.out, summary.locust_exit_code, run_time_s)
        results[name].summary.cpu = summary.cpu
        results[name].summary.server_rss = summary.server_rss
        results[name].summary.shadow = summary.shadow
    return _report(args, previous["settings"], results)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.baseline and args.host:
        parser.error("--baseline starts gunicorn itself; with --host give --baseline-host")
    if args.on_v2 and args.host:
        parser.error("--on-v2 starts its own gateway to move the routes in: not with --host")
    if (args.shadow or args.shadow_routes) and args.host:
        parser.error("--shadow starts its own gateway to shadow routes in: not with --host")
    if args.baseline and _team_pair(args) and args.baseline_wsgi == SHOP_WSGI:
        parser.error("--baseline for a team's pair needs its --baseline-wsgi IMPORT")
    if args.out is None:
        args.out = Path("loadtest-reports") / time.strftime("%Y%m%d-%H%M%S")
    stop_on_signals()
    try:
        if args.report_only:
            return _report_again(args)
        plan = LoadPlan(
            mode=args.mode,
            users=args.users,
            spawn_rate=args.spawn_rate,
            run_time_s=parse_timespan(args.run_time),
            rate=args.rate if args.rate is not None else 5.0 * args.users,
            ramp_steps=args.ramp_steps,
            processes=args.processes,
            tags=tuple(args.tags),
            warmup_max_s=args.warmup_max,
            locustfile=args.locustfile,
        )
        pinning = Pinning.choose(not args.no_pin)
        args.out.mkdir(parents=True, exist_ok=True)
        settings = _settings(args, plan, pinning)
        return _report(args, settings, _run_arms(args, plan, pinning))
    except KeyboardInterrupt:
        print("interrupted: every server and Locust process was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (LoadRunError, RuntimeError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception:
        # A crash must not look like a failed threshold (exit code 1) to a CI gate.
        traceback.print_exc()
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
