"""Judging the arms: per-operation verdicts against thresholds, and per-arm load checks.

The fixed-rate mode offers every arm the same load, so latency is what it compares: v2's
p95 against legacy's. The ramp gives each arm as much as it takes, so throughput is what
it compares: the requests per second v2 sustains against legacy's. Failures count in both.
"""

from __future__ import annotations

from itertools import groupby

from loadtests.results import SETUP_OPERATIONS, ArmResult, Sample
from loadtests.schema import ArmSummary, CpuUsage, OpStats, Ratios, Settings, Step, Thresholds

CANDIDATE, CURRENT = "v2", "legacy"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """None where either figure is unknown, or the denominator is 0."""
    return round(numerator / denominator, 3) if numerator is not None and denominator else None


def ratios(candidate: OpStats, current: OpStats) -> Ratios:
    figures = Ratios.model_fields
    return Ratios(**{f: ratio(getattr(candidate, f), getattr(current, f)) for f in figures})


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


def ramp_steps(history: list[Sample]) -> list[Step]:
    """Per user-count step: the rate it sustained and its p95 (Locust's 10 s rolling p95)."""
    steps = []
    running = (sample for sample in measured(history) if sample.users > 0)
    for users, step in groupby(running, key=lambda sample: sample.users):
        group = list(step)
        # The first second of a step still carries the previous step's pace.
        settled = group[1:] if len(group) > 2 else group
        span = settled[-1].t - settled[0].t
        if span > 0:
            rate = (settled[-1].total_requests - settled[0].total_requests) / span
            steps.append(Step(users=users, rps=round(rate, 1), p95=settled[-1].p95, s=span))
    return steps


# Other processes on the server's cores for more than this share of the time disturb an arm.
MAX_FOREIGN_CPU = 0.10
# A load generator's cores busier than this are likely what limits the load.
MAX_LOADGEN_CPU = 0.90


def cpu_notes(cpu: CpuUsage | None, *, pinned: bool) -> list[str]:
    """What the cores' use says about the arm (only meaningful when the server was pinned)."""
    if cpu is None or not pinned:
        return []
    notes = []
    cores = ",".join(str(core) for core in cpu.server_cores)
    others = cpu.others_on_server_cores or 0.0
    if others > MAX_FOREIGN_CPU:
        notes.append(
            f"other processes kept the server's core {cores} busy {others:.0%} of the time: "
            "this arm's numbers are disturbed"
        )
    locust = cpu.locust_core_share
    if locust is not None and locust > MAX_LOADGEN_CPU:
        notes.append(
            f"Locust used {locust:.0%} of a core per process: it may have limited the load "
            "(more --processes)"
        )
    elif cpu.loadgen_cores_busy > MAX_LOADGEN_CPU:
        share = "" if locust is None else f", Locust itself {locust:.0%} of a core"
        notes.append(
            f"the load generator's cores were {cpu.loadgen_cores_busy:.0%} busy{share}: "
            "other processes there may have slowed it"
        )
    return notes


def cpu_per_request(result: ArmResult) -> float | None:
    """Server CPU per request over the Locust run: robust where latency is not, since other
    processes on the core slow the server down but do not add to its own CPU time."""
    cpu, warmup = result.summary.cpu, result.summary.warmup
    if cpu is None or cpu.server_cpu_s is None:
        return None
    requests = result.total.requests + (warmup.requests if warmup else 0)
    return round(cpu.server_cpu_s * 1000 / requests, 3) if requests else None


def arm_summary(result: ArmResult, settings: Settings, limits: Thresholds) -> ArmSummary:
    warmup = result.summary.warmup
    bottleneck = []
    if warmup and warmup.cut_short:
        bottleneck.append(f"the warm-up was cut short: {warmup.cut_short}")
    if warmup and warmup.failures:
        bottleneck.append(f"{warmup.failures} failures during the warm-up (see Failures)")
    if result.loadgen_warnings:
        bottleneck.append(f"Locust's CPU warning: {result.loadgen_warnings[0]}")
    bottleneck += cpu_notes(result.summary.cpu, pinned=settings.pinned)
    offered = achieved = None
    steps: list[Step] = []
    if settings.mode == "rate":
        offered = settings.rate
        achieved = steady_rate(result.history, settings.users)
        if warmup is not None and result.duration_s > 0:
            # After the warm-up every user runs for the whole window: the final counts are
            # exact, where the history lags (workers report every few seconds).
            paced = sum(
                s.requests for k, s in result.operations.items() if k not in SETUP_OPERATIONS
            )
            achieved = round(paced / result.duration_s, 1)
        if achieved is not None and achieved < settings.rate * limits.min_achieved_share:
            bottleneck.append(
                f"achieved {achieved:g} of {settings.rate:g} req/s offered: the load generator "
                "or the server could not keep the pace, so arms may not have had equal load"
            )
    else:
        steps = ramp_steps(result.history)
    peak = max(steps, key=lambda step: step.rps, default=None)
    judged = {
        "cpu_ms_per_request": cpu_per_request(result),
        "offered_rps": offered,
        "achieved_rps": achieved,
        "steps": steps,
        "peak_rps": peak.rps if peak else None,
        "peak_users": peak.users if peak else None,
        "loadgen_bottleneck": bottleneck,
    }
    return result.summary.model_copy(update=judged)
