"""The comparison as data (`comparison.json`) and as text (`comparison.md`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadtests.results import ArmResult, OpStats
from loadtests.verdicts import (
    CANDIDATE,
    CURRENT,
    Thresholds,
    arm_summary,
    judge_operation,
    ratio,
    ratios,
)

ARM_ORDER = ("baseline", "legacy", "v2")
MODE_TITLES = {
    "rate": "fixed arrival rate: the same requests per second offered to every arm "
    "(compares latency)",
    "ramp": "ramp to saturation: users step up with no pause between requests "
    "(compares the most each arm sustains)",
}


def _arms(results: dict[str, ArmResult]) -> list[str]:
    return [arm for arm in ARM_ORDER if arm in results]


def build_comparison(
    mode: str, settings: dict[str, Any], results: dict[str, ArmResult], limits: Thresholds
) -> dict[str, Any]:
    arms = _arms(results)
    keys = {key for result in results.values() for key in result.operations}
    volume = {
        key: sum(r.operations[key].requests for r in results.values() if key in r.operations)
        for key in keys
    }
    operations = []
    for key in sorted(keys, key=lambda k: (-volume[k], k)):
        stats: dict[str, OpStats | None] = {arm: results[arm].operations.get(key) for arm in arms}
        verdict, reasons = judge_operation(mode, stats, limits)
        row: dict[str, Any] = {"name": key}
        row |= {arm: s.as_dict() if s else None for arm, s in stats.items()}
        new, old = stats.get(CANDIDATE), stats.get(CURRENT)
        row["ratios"] = {"v2/legacy": ratios(new, old) if new and old else None}
        if "baseline" in stats and stats["baseline"] and old:
            row["ratios"]["legacy/baseline"] = ratios(old, stats["baseline"])
        row |= {"verdict": verdict, "reasons": reasons}
        operations.append(row)
    totals = {arm: results[arm].total.as_dict() for arm in arms}
    total_ratios = (
        ratios(results[CANDIDATE].total, results[CURRENT].total)
        if CANDIDATE in results and CURRENT in results
        else None
    )
    summaries = {arm: arm_summary(results[arm], mode, settings, limits) for arm in arms}
    if total_ratios is not None:
        new_cpu = summaries[CANDIDATE]["cpu_ms_per_request"]
        old_cpu = summaries[CURRENT]["cpu_ms_per_request"]
        both = new_cpu is not None and old_cpu is not None
        total_ratios["cpu_per_request"] = ratio(new_cpu, old_cpu) if both else None
        new_rss, old_rss = summaries[CANDIDATE]["server_rss"], summaries[CURRENT]["server_rss"]
        both = new_rss is not None and old_rss is not None
        total_ratios["server_rss_peak"] = (
            ratio(new_rss["peak_mib"], old_rss["peak_mib"]) if both else None
        )
    failed = [row["name"] for row in operations if row["verdict"] == "fail"]
    warmup = results[CANDIDATE].warmup if CANDIDATE in results else None
    if warmup and warmup["failures"] > warmup["requests"] * limits.max_failure_ratio:
        failed.append(f"v2 warm-up ({warmup['failures']} failures)")
    return {
        "mode": mode,
        "mode_description": MODE_TITLES[mode],
        "verdict": "fail" if failed else "pass",
        "failed_checks": failed,
        "settings": settings | {"thresholds": limits.as_dict()},
        "arms": summaries,
        "totals": totals,
        "total_ratios": {"v2/legacy": total_ratios},
        "operations": operations,
        "history": {
            arm: [[s.t, s.epoch, s.users, s.rps, s.p50, s.p95, s.p99] for s in results[arm].history]
            for arm in arms
        },
        "history_columns": ["t_s", "epoch", "users", "rps", "p50", "p95", "p99"],
    }


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}" if isinstance(value, float) else str(value)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _per_arm(row: dict[str, Any], arms: list[str], key: str, digits: int = 0) -> str:
    return " / ".join(_fmt(row[arm][key] if row.get(arm) else None, digits) for arm in arms)


def warmup_text(warmup: dict[str, Any] | None) -> str:
    if warmup is None:
        return "none"
    return (
        f"{warmup['seconds']:.1f} s ({warmup['requests']:,} requests, "
        f"{warmup['failures']} failures, not counted)"
    )


# Locust's workers report to the master every 3 s: shorter steps are read too coarsely.
WORKER_REPORT_S = 3
MIN_STEP_S_DISTRIBUTED = 5 * WORKER_REPORT_S


def steps_note(comparison: dict[str, Any]) -> str | None:
    s = comparison["settings"]
    step_s = s["run_time_s"] / max(s["ramp_steps"], 1)
    if s["processes"] > 1 and step_s < MIN_STEP_S_DISTRIBUTED:
        return (
            f"With {s['processes']} Locust processes the history arrives in {WORKER_REPORT_S} s "
            f"reports: steps of {step_s:g} s are too short to read a rate from (use "
            f"{MIN_STEP_S_DISTRIBUTED} s or more); the totals are exact."
        )
    return None


def ms_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def rss_text(rss: dict[str, Any] | None) -> str:
    """`142 MiB`, or `231 MiB (2 processes)` for a server with workers."""
    if rss is None:
        return "-"
    text = f"{rss['peak_mib']:,.0f} MiB"
    return text + (f" ({rss['processes']} processes)" if rss["processes"] > 1 else "")


def cpu_text(usage: dict[str, Any] | None) -> str:
    if usage is None:
        return "-"
    cores = ",".join(str(core) for core in usage["server_cores"])
    text = f"core {cores} {usage['server_cores_busy']:.0%} busy"
    if "server_itself" in usage:
        text += (
            f" (server {usage['server_itself']:.0%}, others {usage['others_on_server_cores']:.0%})"
        )
    text += f"; Locust's cores {usage['loadgen_cores_busy']:.0%}"
    if "locust_core_share" in usage:
        text += f" (Locust {usage['locust_core_share']:.0%} of a core per process)"
    return text


def load_notes(comparison: dict[str, Any]) -> list[str]:
    """Whether every arm got the load it was meant to get, and served it without errors."""
    notes = []
    for arm, summary in comparison["arms"].items():
        for problem in summary["loadgen_bottleneck"]:
            notes.append(f"**{arm}**: {problem}")
        if summary.get("server_error_lines"):
            notes.append(
                f"**{arm}**: the server logged {summary['server_error_lines']} error lines "
                f"({summary['server_log']})"
            )
    return notes


def settings_lines(comparison: dict[str, Any]) -> list[str]:
    s = comparison["settings"]
    load = f"{s['users']} users, spawn rate {s['spawn_rate']}/s, {s['run_time_s']} s per arm"
    if comparison["mode"] == "rate":
        load += f", {s['rate']:g} req/s offered ({s['user_rps']:g} per user)"
    else:
        load += f", {s['ramp_steps']} steps"
    tags = "tags " + ", ".join(s["tags"]) if s["tags"] else "all"
    warmup = (
        f"until every user is set up (login, first lists; at most {s['warmup_max_s']} s), "
        "not counted"
        if s["warmup_max_s"] > 0
        else "none: the start-up (logins) is counted"
    )
    return [
        f"Mode: {comparison['mode_description']}",
        f"Warm-up: {warmup}",
        f"Load: {load}; Locust processes: {s['processes']}; flows: {tags}",
        f"Servers: {s['servers']}",
        f"Cores: {s['pinning']}",
        f"Started {s['started_at']} on {s['machine']}",
    ]


def write_markdown(comparison: dict[str, Any], path: Path) -> None:
    arms = list(comparison["totals"])
    header = " / ".join(arms)
    lines = [f"# Load comparison: {comparison['verdict'].upper()}", ""]
    lines += [f"- {line}" for line in settings_lines(comparison)] + [""]
    lines += ["## Totals (measured window)", ""]
    lines += [
        "| arm | requests | failures | req/s | p50 | p95 | p99 | load | server CPU / request "
        "| server RSS (peak) | warm-up | CPU during the arm |"
    ]
    lines += ["|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|"]
    for arm in arms:
        t, summary = comparison["totals"][arm], comparison["arms"][arm]
        if comparison["mode"] == "rate":
            load = f"{_fmt(summary['achieved_rps'])} of {_fmt(summary['offered_rps'])} req/s"
        else:
            load = f"peak {_fmt(summary['peak_rps'])} req/s at {summary['peak_users']} users"
        lines.append(
            f"| {arm} | {t['requests']:,} | {t['failures']:,} | {_fmt(t['rps'], 1)} "
            f"| {_fmt(t['p50'])} | {_fmt(t['p95'])} | {_fmt(t['p99'])} | {load} "
            f"| {ms_text(summary['cpu_ms_per_request'])} | {rss_text(summary['server_rss'])} "
            f"| {warmup_text(summary['warmup'])} "
            f"| {cpu_text(summary['cpu'])} |"
        )
    total = comparison["total_ratios"]["v2/legacy"]
    if total:
        lines += [
            "",
            f"v2/legacy overall: req/s {_ratio(total['rps'])}, "
            f"p50 {_ratio(total['p50'])}, p95 {_ratio(total['p95'])}, "
            f"p99 {_ratio(total['p99'])}, server CPU per request "
            f"{_ratio(total.get('cpu_per_request'))}, server RSS (peak) "
            f"{_ratio(total.get('server_rss_peak'))} (below 1x is faster or cheaper).",
        ]
    notes = load_notes(comparison)
    lines += ["", "## Load check", ""]
    lines += [f"- {note}" for note in notes] or ["- Every arm got the planned load."]
    lines += ["", f"## Operations (times in ms; each cell {header})", ""]
    lines += [
        "| operation | requests | failures | req/s | p50 | p95 | p99 "
        "| v2/legacy p50 | v2/legacy p95 | v2/legacy req/s | verdict |"
    ]
    lines += ["|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in comparison["operations"]:
        r = row["ratios"]["v2/legacy"] or {}
        cells = [_per_arm(row, arms, key) for key in ("requests", "failures")]
        cells.append(_per_arm(row, arms, "rps", 1))
        cells += [_per_arm(row, arms, key) for key in ("p50", "p95", "p99")]
        cells += [_ratio(r.get("p50")), _ratio(r.get("p95")), _ratio(r.get("rps"))]
        verdict = row["verdict"] + (f" ({'; '.join(row['reasons'])})" if row["reasons"] else "")
        lines.append(f"| `{row['name']}` | " + " | ".join(cells) + f" | {verdict} |")
    if comparison["mode"] == "ramp":
        lines += ["", "## Steps (req/s sustained; rolling p95 ms)", ""]
        for arm in arms:
            steps = comparison["arms"][arm]["steps"]
            text = ", ".join(
                f"{s['users']} users: {s['rps']:g} req/s, p95 {_fmt(s['p95'])}" for s in steps
            )
            lines.append(f"- {arm}: {text}")
        if note := steps_note(comparison):
            lines += ["", note]
    errors = [(arm, e) for arm in arms for e in comparison["arms"][arm]["errors"]]
    if errors:
        lines += ["", "## Failures", ""]
        lines += [
            f"- {arm}: {e['occurrences']}x {e['method']} {e['name']}: {e['error']}"
            for arm, e in errors
        ]
    lines += [
        "",
        "Per-arm Locust reports: "
        + ", ".join(f"[{arm}]({comparison['arms'][arm]['files']['html']})" for arm in arms),
    ]
    path.write_text("\n".join(lines) + "\n")


def write_json(comparison: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(comparison, indent=2) + "\n")
