"""The comparison as data (`comparison.json`) and as text (`comparison.md`).

The texts that Markdown and HTML share (settings, load check, cells) are written here once.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from loadtests.formats import num, times
from loadtests.results import ArmResult
from loadtests.schema import (
    ArmSummary,
    Comparison,
    CpuUsage,
    Operation,
    OpStats,
    Ratios,
    ServerRss,
    Settings,
    Thresholds,
    TotalRatios,
)
from loadtests.shadow_report import SHADOW, shadow_checks, shadow_markdown
from loadtests.verdicts import CANDIDATE, CURRENT, arm_summary, judge_operation, ratio, ratios

# The legacy clients against the gateway with every paired route served by v2.
ON_V2 = "legacy-on-v2"
ARM_ORDER = ("baseline", "legacy", SHADOW, ON_V2, "v2")
PAIR = f"{CANDIDATE}/{CURRENT}"
# More ratios, where both arms ran: what a legacy client gains from the cutover, what the
# adapters cost against v2 served at its own door, and what shadowing costs a legacy client.
OTHER_PAIRS = (("legacy", "baseline"), (ON_V2, CURRENT), (ON_V2, CANDIDATE), (SHADOW, CURRENT))
MODE_TITLES = {
    "rate": "fixed arrival rate: the same requests per second offered to every arm "
    "(compares latency)",
    "ramp": "ramp to saturation: users step up with no pause between requests "
    "(compares the most each arm sustains)",
}
STAT_COLUMNS = (("requests", 0), ("failures", 0), ("rps", 1), ("p50", 0), ("p95", 0), ("p99", 0))


def _operation(
    key: str, arms: list[str], results: dict[str, ArmResult], mode: str, limits: Thresholds
) -> Operation:
    stats = {arm: results[arm].operations.get(key) for arm in arms}
    verdict, reasons = judge_operation(mode, stats, limits)
    new, old = stats.get(CANDIDATE), stats.get(CURRENT)
    found: dict[str, Ratios | None] = {PAIR: ratios(new, old) if new and old else None}
    for top, bottom in OTHER_PAIRS:
        if (over := stats.get(top)) and (under := stats.get(bottom)):
            found[f"{top}/{bottom}"] = ratios(over, under)
    return Operation(name=key, stats=stats, ratios=found, verdict=verdict, reasons=reasons)


def _total_ratios(
    summaries: dict[str, ArmSummary], results: dict[str, ArmResult], top: str, bottom: str
) -> TotalRatios:
    new, old = summaries[top], summaries[bottom]
    return TotalRatios(
        **ratios(results[top].total, results[bottom].total).model_dump(),
        cpu_per_request=ratio(new.cpu_ms_per_request, old.cpu_ms_per_request),
        server_rss_peak=ratio(_peak_mib(new), _peak_mib(old)),
    )


def _peak_mib(summary: ArmSummary) -> float | None:
    return summary.server_rss.peak_mib if summary.server_rss else None


def build_comparison(
    mode: str, settings: dict[str, Any], results: dict[str, ArmResult], limits: Thresholds
) -> Comparison:
    arms = [arm for arm in ARM_ORDER if arm in results]
    run = Settings.model_validate(settings | {"thresholds": limits})
    volume: Counter[str] = Counter()
    for result in results.values():
        volume.update({key: stats.requests for key, stats in result.operations.items()})
    operations = [
        _operation(key, arms, results, mode, limits)
        for key in sorted(volume, key=lambda k: (-volume[k], k))
    ]
    summaries = {arm: arm_summary(results[arm], run, limits) for arm in arms}
    both = CANDIDATE in results and CURRENT in results
    failed = [row.name for row in operations if row.verdict == "fail"]
    warmup = summaries[CANDIDATE].warmup if CANDIDATE in summaries else None
    if warmup and warmup.failures > warmup.requests * limits.max_failure_ratio:
        failed.append(f"v2 warm-up ({warmup.failures} failures)")
    failed += shadow_checks(summaries, {arm: results[arm].total for arm in arms}, limits)
    return Comparison(
        mode=mode,
        mode_description=MODE_TITLES[mode],
        verdict="fail" if failed else "pass",
        failed_checks=failed,
        settings=run,
        arms=summaries,
        totals={arm: results[arm].total for arm in arms},
        total_ratios={
            PAIR: _total_ratios(summaries, results, CANDIDATE, CURRENT) if both else None,
            **{
                f"{top}/{bottom}": _total_ratios(summaries, results, top, bottom)
                for top, bottom in OTHER_PAIRS[1:]
                if top in results and bottom in results
            },
        },
        operations=operations,
        history={
            arm: [[s.t, s.epoch, s.users, s.rps, s.p50, s.p95, s.p99] for s in results[arm].history]
            for arm in arms
        },
    )


def _stat(stats: OpStats | None, key: str, digits: int = 0) -> str:
    return num(getattr(stats, key) if stats else None, digits)


# Locust's workers report to the master every 3 s: shorter steps are read too coarsely.
WORKER_REPORT_S = 3
MIN_STEP_S_DISTRIBUTED = 5 * WORKER_REPORT_S


def _steps_note(s: Settings) -> list[str]:
    step_s = s.run_time_s / max(s.ramp_steps, 1)
    if s.processes > 1 and step_s < MIN_STEP_S_DISTRIBUTED:
        return [
            "",
            f"With {s.processes} Locust processes the history arrives in {WORKER_REPORT_S} s "
            f"reports: steps of {step_s:g} s are too short to read a rate from (use "
            f"{MIN_STEP_S_DISTRIBUTED} s or more); the totals are exact.",
        ]
    return []


def _rss_text(rss: ServerRss | None) -> str:
    """`142 MiB`, or `231 MiB (2 processes)` for a server with workers."""
    if rss is None:
        return "-"
    text = f"{num(rss.peak_mib)} MiB"
    return text + (f" ({rss.processes} processes)" if rss.processes > 1 else "")


def _cpu_text(cpu: CpuUsage | None) -> str:
    if cpu is None:
        return "-"
    text = f"core {','.join(map(str, cpu.server_cores))} {cpu.server_cores_busy:.0%} busy"
    if cpu.server_itself is not None and cpu.others_on_server_cores is not None:
        text += f" (server {cpu.server_itself:.0%}, others {cpu.others_on_server_cores:.0%})"
    text += f"; Locust's cores {cpu.loadgen_cores_busy:.0%}"
    if cpu.locust_core_share is not None:
        text += f" (Locust {cpu.locust_core_share:.0%} of a core per process)"
    return text


def _settings_lines(comparison: Comparison) -> list[str]:
    s = comparison.settings
    load = f"{s.users} users, spawn rate {s.spawn_rate}/s, {s.run_time_s} s per arm"
    if comparison.mode == "rate":
        load += f", {s.rate:g} req/s offered ({s.user_rps:g} per user)"
    else:
        load += f", {s.ramp_steps} steps"
    tags = "tags " + ", ".join(s.tags) if s.tags else "all"
    warmup = (
        f"until every user is set up (login, first lists; at most {s.warmup_max_s} s), not counted"
        if s.warmup_max_s > 0
        else "none: the start-up (logins) is counted"
    )
    return [
        f"Mode: {comparison.mode_description}",
        f"Warm-up: {warmup}",
        f"Load: {load}; Locust processes: {s.processes}; flows: {tags}",
        f"Servers: {s.servers}",
        f"Cores: {s.pinning}",
        f"Started {s.started_at} on {s.machine}",
    ]


TOTALS_HEAD = ["arm", "requests", "failures", "req/s", "p50 ms", "p95 ms", "p99 ms", "load"]
TOTALS_HEAD += ["server CPU / request", "server RSS (peak)", "warm-up", "CPU during the arm"]


def _totals_row(comparison: Comparison, arm: str, stats: OpStats) -> list[str]:
    summary, warmup = comparison.arms[arm], comparison.arms[arm].warmup
    if comparison.mode == "rate":
        load = f"{num(summary.achieved_rps, 1)} of {num(summary.offered_rps)} req/s"
    else:
        load = f"peak {num(summary.peak_rps, 1)} req/s at {summary.peak_users} users"
    cpu = summary.cpu_ms_per_request
    return [
        arm,
        *(_stat(stats, key, digits) for key, digits in STAT_COLUMNS),
        load,
        "-" if cpu is None else f"{cpu:.2f} ms",
        _rss_text(summary.server_rss),
        "none"
        if warmup is None
        else f"{warmup.seconds:.1f} s ({warmup.requests:,} requests, "
        f"{warmup.failures} failures, not counted)",
        _cpu_text(summary.cpu),
    ]


def _load_notes(comparison: Comparison) -> list[str]:
    """Whether every arm got the load it was meant to get, and served it without errors."""
    notes = []
    for arm, summary in comparison.arms.items():
        notes += [f"**{arm}**: {problem}" for problem in summary.loadgen_bottleneck]
        if summary.server_error_lines:
            notes.append(
                f"**{arm}**: the server logged {summary.server_error_lines} error lines "
                f"({summary.server_log})"
            )
    return notes or ["Every arm got the planned load."]


def _table(head: list[str], align: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


FOOTNOTE = (
    "Ratios are v2 divided by legacy: below 1x is faster for latency, above 1x is more "
    "throughput. Locust rounds times under 100 ms to whole milliseconds, so small times "
    "differ in steps of 1 ms. Numbers from one run on a shared machine are noisy: compare "
    "arms within a run, not across runs."
)


def markdown(comparison: Comparison) -> str:
    """`comparison.md`, which `comparison.html` renders."""
    arms = list(comparison.totals)
    lines = [f"# Load comparison: {comparison.verdict.upper()}", ""]
    lines += [f"- {line}" for line in _settings_lines(comparison)] + [""]
    lines += ["## Totals (measured window)", ""]
    align = ["---", *["---:"] * 6, "---", "---:", "---:", "---", "---"]
    totals = [_totals_row(comparison, arm, stats) for arm, stats in comparison.totals.items()]
    lines += _table(TOTALS_HEAD, align, totals)
    for name, total in comparison.total_ratios.items():
        if total:
            lines += [
                "",
                f"{name} overall: req/s {times(total.rps)}, p50 {times(total.p50)}, "
                f"p95 {times(total.p95)}, p99 {times(total.p99)}, server CPU per request "
                f"{times(total.cpu_per_request)}, server RSS (peak) "
                f"{times(total.server_rss_peak)} (below 1x is faster or cheaper).",
            ]
    lines += ["", "## Load check", "", *[f"- {note}" for note in _load_notes(comparison)]]
    lines += ["", f"## Operations (times in ms; each cell {' / '.join(arms)})", ""]
    head = ["operation", "requests", "failures", "req/s", "p50", "p95", "p99"]
    head += [f"{PAIR} p50", f"{PAIR} p95", f"{PAIR} req/s", "verdict"]
    rows = []
    for row in comparison.operations:
        r = row.ratios[PAIR]
        cells = [" / ".join(_stat(row.stats[arm], k, d) for arm in arms) for k, d in STAT_COLUMNS]
        cells += [times(r.p50), times(r.p95), times(r.rps)] if r else ["-"] * 3
        reasons = f" ({'; '.join(row.reasons)})" if row.reasons else ""
        # Bold, so that a failed operation stands out of the table in both renderings.
        verdict = f"**{row.verdict}**" if row.verdict == "fail" else row.verdict
        rows.append([f"`{row.name}`", *cells, verdict + reasons])
    lines += _table(head, ["---", *["---:"] * 9, "---"], rows)
    if comparison.mode == "ramp":
        lines += ["", "## Steps (req/s sustained; rolling p95)", ""]
        lines += [
            f"- {arm}: "
            + ", ".join(f"{s.users} users: {s.rps:g} req/s, p95 {num(s.p95)} ms" for s in a.steps)
            for arm, a in comparison.arms.items()
        ]
        lines += _steps_note(comparison.settings)
    lines += shadow_markdown(comparison)
    failures = [
        f"- {arm}: {e.occurrences:,}x {e.method} {e.name}: {e.error}"
        for arm, summary in comparison.arms.items()
        for e in summary.errors
    ]
    if failures:
        lines += ["", "## Failures", "", *failures]
    lines += ["", "## Raw data", ""]
    lines += [
        f"- {arm}: [Locust report]({s.files['html']}), [stats CSV]({s.files['stats_csv']}), "
        f"[history CSV]({s.files['history_csv']})"
        for arm, s in comparison.arms.items()
    ]
    return "\n".join([*lines, "", FOOTNOTE]) + "\n"
