"""Judging the arms: per-operation verdicts against thresholds, and per-arm load checks.

The fixed-rate mode offers every arm the same load, so latency is what it compares: v2's
p95 against legacy's. The ramp gives each arm as much as it takes, so throughput is what
it compares: the requests per second v2 sustains against legacy's. Failures count in both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from loadtests.results import SETUP_OPERATIONS, ArmResult, OpStats, Sample

CANDIDATE, CURRENT = "v2", "legacy"


@dataclass(frozen=True)
class Thresholds:
    max_p95_ratio: float = 1.0
    # Locust rounds times under 100 ms to whole milliseconds: a 1 ms step is not a regression.
    p95_slack_ms: float = 2.0
    max_failure_ratio: float = 0.001
    min_rps_ratio: float = 1.0
    # Fewer requests than this in an arm (logins, set-up lists) say nothing about latency.
    min_requests: int = 50
    # An arm that got less than this share of the offered rate did not get the same load.
    min_achieved_share: float = 0.95

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def ratios(candidate: OpStats, current: OpStats) -> dict[str, float | None]:
    return {
        key: ratio(getattr(candidate, key), getattr(current, key))
        for key in ("rps", "p50", "p95", "p99")
    }


def judge_operation(
    mode: str, stats: dict[str, OpStats | None], limits: Thresholds
) -> tuple[str, list[str]]:
    """`pass`, `fail` or `not judged` (too few requests, no failures), with the reasons."""
    new, old = stats.get(CANDIDATE), stats.get(CURRENT)
    if new is None or old is None:
        missing, present = (CANDIDATE, old) if new is None else (CURRENT, new)
        reason = f"no {missing} requests for this operation"
        # Chance can leave a rare operation out of a short run; a frequent one cannot.
        frequent = present is not None and present.requests >= limits.min_requests
        return ("fail" if frequent else "not judged"), [reason]
    reasons: list[str] = []
    failed = False
    if new.failure_ratio > limits.max_failure_ratio:
        failed = True
        reasons.append(f"v2 failure ratio {new.failure_ratio:.2%} > {limits.max_failure_ratio:.2%}")
    for arm, arm_stats in stats.items():
        if arm != CANDIDATE and arm_stats is not None and arm_stats.failures:
            reasons.append(f"{arm} had {arm_stats.failures} failures (not judged)")
    if min(new.requests, old.requests) < limits.min_requests:
        reasons.append(f"fewer than {limits.min_requests} requests: only failures judged")
        return ("fail" if failed else "not judged"), reasons
    if mode == "rate":
        allowed = old.p95 * limits.max_p95_ratio + limits.p95_slack_ms
        if new.p95 > allowed:
            failed = True
            reasons.append(f"v2 p95 {new.p95:g} ms > {allowed:g} ms allowed")
    else:
        wanted = old.rps * limits.min_rps_ratio
        if new.rps < wanted:
            failed = True
            reasons.append(f"v2 {new.rps:g} req/s < {wanted:g} req/s wanted")
    return ("fail" if failed else "pass"), reasons


def measured(history: list[Sample]) -> list[Sample]:
    """The samples after the warm-up (the last statistics epoch)."""
    last = max((sample.epoch for sample in history), default=0)
    return [sample for sample in history if sample.epoch == last]


def steady_rate(history: list[Sample], users: int) -> float | None:
    """Requests per second once all users were running (None if that never lasted 2 s)."""
    full = [sample for sample in measured(history) if sample.users >= users]
    if len(full) < 2 or full[-1].t - full[0].t < 2:
        return None
    return round((full[-1].total_requests - full[0].total_requests) / (full[-1].t - full[0].t), 1)


def ramp_steps(history: list[Sample]) -> list[dict[str, Any]]:
    """Per user-count step: the rate it sustained and its p95 (Locust's 10 s rolling p95)."""
    groups: list[list[Sample]] = []
    for sample in measured(history):
        if sample.users == 0:
            continue
        if groups and groups[-1][0].users == sample.users:
            groups[-1].append(sample)
        else:
            groups.append([sample])
    steps = []
    for group in groups:
        # The first second of a step still carries the previous step's pace.
        settled = group[1:] if len(group) > 2 else group
        span = settled[-1].t - settled[0].t
        if span <= 0:
            continue
        rate = (settled[-1].total_requests - settled[0].total_requests) / span
        steps.append(
            {"users": group[0].users, "rps": round(rate, 1), "p95": settled[-1].p95, "s": span}
        )
    return steps


# Other processes on the server's cores for more than this share of the time disturb an arm.
MAX_FOREIGN_CPU = 0.10
# A load generator's cores busier than this are likely what limits the load.
MAX_LOADGEN_CPU = 0.90


def cpu_notes(usage: dict[str, Any] | None, *, pinned: bool) -> list[str]:
    """What the cores' use says about the arm (only meaningful when the server was pinned)."""
    if usage is None or not pinned:
        return []
    notes = []
    cores = ",".join(str(core) for core in usage["server_cores"])
    others = usage.get("others_on_server_cores", 0.0)
    if others > MAX_FOREIGN_CPU:
        notes.append(
            f"other processes kept the server's core {cores} busy {others:.0%} of the time: "
            "this arm's numbers are disturbed"
        )
    locust = usage.get("locust_core_share")
    if locust is not None and locust > MAX_LOADGEN_CPU:
        notes.append(
            f"Locust used {locust:.0%} of a core per process: it may have limited the load "
            "(more --processes)"
        )
    elif usage["loadgen_cores_busy"] > MAX_LOADGEN_CPU:
        share = "" if locust is None else f", Locust itself {locust:.0%} of a core"
        notes.append(
            f"the load generator's cores were {usage['loadgen_cores_busy']:.0%} busy{share}: "
            "other processes there may have slowed it"
        )
    return notes


def cpu_per_request(result: ArmResult) -> float | None:
    """Server CPU per request over the Locust run: robust where latency is not, since other
    processes on the core slow the server down but do not add to its own CPU time."""
    if result.cpu is None or "server_cpu_s" not in result.cpu:
        return None
    requests = result.total.requests + (result.warmup["requests"] if result.warmup else 0)
    return round(result.cpu["server_cpu_s"] * 1000 / requests, 3) if requests else None


def arm_summary(
    result: ArmResult, mode: str, plan: dict[str, Any], limits: Thresholds
) -> dict[str, Any]:
    """What the report says about an arm as a whole, including whether its load was valid."""
    summary: dict[str, Any] = {
        "host": result.host,
        "prefix": result.prefix,
        "files": result.files,
        "locust_exit_code": result.locust_exit_code,
        "errors": result.errors,
    }
    summary["warmup"] = result.warmup
    summary["cpu"] = result.cpu
    summary["cpu_ms_per_request"] = cpu_per_request(result)
    summary["server_rss"] = result.server_rss
    bottleneck = []
    if result.warmup and result.warmup["cut_short"]:
        bottleneck.append(f"the warm-up was cut short: {result.warmup['cut_short']}")
    if result.warmup and result.warmup["failures"]:
        bottleneck.append(f"{result.warmup['failures']} failures during the warm-up (see Failures)")
    if result.loadgen_warnings:
        bottleneck.append(f"Locust's CPU warning: {result.loadgen_warnings[0]}")
    bottleneck += cpu_notes(result.cpu, pinned=plan.get("pinned", False))
    if mode == "rate":
        offered = float(plan["rate"])
        achieved = steady_rate(result.history, int(plan["users"]))
        if result.warmup is not None and result.duration_s > 0:
            # After the warm-up every user runs for the whole window: the final counts are
            # exact, where the history lags (workers report every few seconds).
            paced = sum(
                s.requests for k, s in result.operations.items() if k not in SETUP_OPERATIONS
            )
            achieved = round(paced / result.duration_s, 1)
        summary |= {"offered_rps": offered, "achieved_rps": achieved}
        if achieved is not None and achieved < offered * limits.min_achieved_share:
            bottleneck.append(
                f"achieved {achieved:g} of {offered:g} req/s offered: the load generator "
                "or the server could not keep the pace, so arms may not have had equal load"
            )
    else:
        steps = ramp_steps(result.history)
        peak = max(steps, key=lambda step: step["rps"], default=None)
        summary |= {"steps": steps, "peak_rps": peak["rps"] if peak else None}
        summary["peak_users"] = peak["users"] if peak else None
    summary["loadgen_bottleneck"] = bottleneck
    return summary
