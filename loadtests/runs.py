"""Running Locust headless, in a process of its own, for one arm, and reading what it wrote."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests import usage
from loadtests.results import ArmResult, read_errors, read_final_stats, read_history, read_notes
from loadtests.schema import ArmSummary
from loadtests.servers import Pinning, Process, free_port, tail

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
RAMP_SHAPE = HERE / "ramp_shape.py"
MODES = ("rate", "ramp")
WARMUP_BACKSTOP_S = 30
# Beyond the run time: spawning workers, the last requests, writing the reports.
LOCUST_GRACE_S = 120.0
_TIMESPAN = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_timespan(text: str) -> int:
    """Seconds in `90`, `90s`, `1m30s` or `1h` (Locust's --run-time syntax).

    Not Locust's own `parse_timespan`: importing anything of `locust` monkey-patches the
    importing process with gevent, and the runner is a plain threaded program.
    """
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    match = _TIMESPAN.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"not a time span: {text!r} (use e.g. 30s, 2m, 1m30s)")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class LoadPlan:
    """The load every arm gets: the same users, spawn rate, duration and pacing."""

    users: int
    spawn_rate: float
    run_time_s: int
    rate: float
    mode: str = "rate"
    ramp_steps: int = 1
    processes: int = 1
    tags: tuple[str, ...] = ()
    warmup_max_s: int = 0
    locustfile: Path = LOCUSTFILE

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if self.users < 1 or self.spawn_rate <= 0 or self.run_time_s < 1:
            raise ValueError("--users, --spawn-rate and --run-time must be positive")
        if self.mode == "rate" and self.rate <= 0:
            raise ValueError("--rate must be positive")
        if self.ramp_steps < 1 or self.processes < 1:
            raise ValueError("--ramp-steps and --processes must be positive")
        if self.warmup_max_s < 0:
            raise ValueError("--warmup-max must be 0 (no warm-up) or more")

    @property
    def locust_run_time_s(self) -> int:
        """Locust's own --run-time: only a backstop when the warm-up ends the run."""
        if self.warmup_max_s <= 0:
            return self.run_time_s
        return self.warmup_max_s + self.run_time_s + WARMUP_BACKSTOP_S

    @property
    def user_rps(self) -> float:
        """Each user's pace in the fixed-rate mode; 0 (back to back) in the ramp."""
        return self.rate / self.users if self.mode == "rate" else 0.0


@dataclass(frozen=True)
class Arm:
    """One side of the comparison: which users run, against which server."""

    name: str
    user_class: str
    prefix: str
    server: str  # "gateway" or "gunicorn": what a managed run starts for it
    label: str


def locust_command(
    plan: LoadPlan, host: str, files: Path, user_classes: Sequence[str], pinning: Pinning
) -> list[str]:
    """Locust's command line for the plan; its reports are `files` with Locust's suffixes."""
    command = [*pinning.prefix(pinning.loadgen), sys.executable, "-m", "locust"]
    shape = f",{RAMP_SHAPE}" if plan.mode == "ramp" else ""
    command += ["-f", f"{plan.locustfile}{shape}", "--headless", "--host", host]
    command += ["--users", str(plan.users), "--spawn-rate", str(plan.spawn_rate)]
    command += ["--run-time", f"{plan.locust_run_time_s}s", "--user-rps", str(plan.user_rps)]
    if plan.warmup_max_s > 0:
        command += ["--measure-s", str(plan.run_time_s), "--warmup-max-s", str(plan.warmup_max_s)]
    command += ["--csv", str(files), "--csv-full-history"]
    command += ["--html", f"{files}.html", "--json-file", str(files)]
    command += ["--notes-file", f"{files}.notes.json"]
    if plan.mode == "ramp":
        command += ["--ramp-steps", str(plan.ramp_steps)]
    if plan.processes > 1:
        # A port of its own, so that another Locust on the machine cannot collide with it.
        port = str(free_port())
        command += ["--processes", str(plan.processes)]
        command += ["--master-port", port, "--master-bind-port", port]
    if plan.tags:
        command += ["--tags", *plan.tags]
    # A flag after --tags ends its list, so the class names are not read as more tags.
    return [*command, "--only-summary", *user_classes]


class LoadRunError(RuntimeError):
    pass


def run_locust(command: list[str], log: Path, timeout_s: float) -> int:
    """Locust's exit status once it has finished; LoadRunError if it has not by `timeout_s`."""
    locust = Process(command, log=log, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        return locust.popen.wait(timeout_s)
    except subprocess.TimeoutExpired:
        raise LoadRunError(f"Locust did not finish ({log.name}):\n{tail(log)}") from None
    finally:
        locust.stop()


def run_load(
    plan: LoadPlan,
    arm: Arm,
    host: str,
    out: Path,
    pinning: Pinning,
    server_pgid: int | None = None,
) -> ArmResult:
    """Run Locust against `host` for the plan's duration and read its results."""
    out.mkdir(parents=True, exist_ok=True)
    command = locust_command(plan, host, out / arm.name, [arm.user_class], pinning)
    before, locust_before = usage.sample(server_pgid), usage.children_cpu_s()
    started = time.monotonic()
    with usage.PeakRss(server_pgid) as rss:
        timeout = plan.locust_run_time_s + LOCUST_GRACE_S
        exit_code = run_locust(command, out / f"{arm.name}.locust.log", timeout)
    result = read_arm(arm, host, out, exit_code, plan.run_time_s)
    result.summary.server_rss = rss.summary()
    cpu = usage.usage(before, usage.sample(server_pgid), pinning.server, pinning.loadgen)
    if cpu is not None:
        # Locust is the only child that ended meanwhile: the children's time grew by its own.
        used = usage.children_cpu_s() - locust_before
        per_process = used / max(time.monotonic() - started, 1e-9) / plan.processes
        share = {"locust_cpu_s": round(used, 2), "locust_core_share": round(per_process, 3)}
        cpu = cpu.model_copy(update=share)
    result.summary.cpu = cpu
    return result


def read_arm(
    arm: Arm, host: str, out: Path, exit_code: int, window_s: float | None = None
) -> ArmResult:
    """An arm's results from the files its Locust run left in `out`."""
    log = out / f"{arm.name}.locust.log"
    final = out / f"{arm.name}.json"
    history = out / f"{arm.name}_stats_history.csv"
    if not final.exists() or not history.exists():
        raise LoadRunError(f"Locust wrote no results for {arm.name}:\n{tail(log)}")
    try:
        operations, total, duration = read_final_stats(final, arm.prefix, window_s)
    except ValueError as exc:
        raise LoadRunError(f"{exc}\n{tail(log)}") from None
    notes = read_notes(out / f"{arm.name}.notes.json")
    files = {
        "html": f"{arm.name}.html",
        "stats_csv": f"{arm.name}_stats.csv",
        "history_csv": history.name,
        "failures_csv": f"{arm.name}_failures.csv",
        "json": final.name,
        "notes": f"{arm.name}.notes.json",
        "log": log.name,
    }
    summary = ArmSummary(
        host=host,
        prefix=arm.prefix,
        files=files,
        locust_exit_code=exit_code,
        errors=read_errors(out / files["failures_csv"]),
        warmup=notes.warmup,
    )
    return ArmResult(
        summary=summary,
        operations=operations,
        total=total,
        history=read_history(history, notes.warmup.ended_at if notes.warmup else None),
        duration_s=duration,
        loadgen_warnings=notes.loadgen_warnings,
    )
