"""A warm-up that ends when every user has finished its set-up, then a measured window.

Until every user is spawned and has done its set-up (the stack's login, the product and
customer lists), the offered load is not the planned one and the server is busy with
argon2 and first connections: a comparison that counted that would compare start-ups.
With `--measure-s S` the statistics are reset once every user has finished `on_start`
(or after `--warmup-max-s`), then the run lasts S seconds more and stops. The set-up rows
keep their numbers.

Across processes (`--processes`, `--master`/`--worker`) workers tell the master when a
user is ready, the master tells the workers when the warm-up is over, and each worker
tells the master what it dropped. With `--notes-file` the master writes what the warm-up
dropped and whether Locust's CPU was the limit as JSON when it quits (`LocustNotes`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from loadtests.schema import LocustNotes, Warmup

log = logging.getLogger("loadtests.warmup")
READY, OVER, DROPPED = "shop_user_ready", "shop_warmup_over", "shop_warmup_dropped"

KeepRow = Callable[[str, str], bool]


@dataclass
class State:
    """The state of the warm-up in this process (Locust runs one test per process)."""

    keep: KeepRow = lambda method, name: False
    ready: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    result: Warmup | None = None
    peak_cpu: float = 0.0


state = State()


def _option(environment: Any, name: str, default: float = 0.0) -> Any:
    return getattr(environment.parsed_options, name, default) or default


def _reset(environment: Any) -> tuple[int, int]:
    """Zero every row but the set-up rows; returns the requests and failures dropped."""
    stats = environment.runner.stats
    dropped = failures = 0
    now = time.time()
    for (name, method), entry in stats.entries.items():
        if state.keep(method, name):
            entry.start_time = now  # so that every row's rate covers the measured window
            continue
        dropped += entry.num_requests
        failures += entry.num_failures
        entry.reset()
    stats.total.reset()
    return dropped, failures


def _end(environment: Any, *, cut_short: bool = False) -> None:
    if state.ended_at is not None or state.started_at is None:
        return
    runner = environment.runner
    state.ended_at = time.monotonic()
    requests, failures = _reset(environment)
    state.result = Warmup(
        ended_at=time.time(),
        seconds=round(state.ended_at - state.started_at, 1),
        requests=requests,
        failures=failures,
        cut_short=f"only {state.ready} of {runner.target_user_count} users were ready"
        if cut_short
        else None,
    )
    log.info("warm-up over: %s", state.result)
    if isinstance(runner, MasterRunner):
        runner.send_message(OVER)
    # A headless run stops the way --run-time stops it.
    gevent.spawn_later(_option(environment, "measure_s"), runner.quit)


def _on_ready(environment: Any, msg: Any, **_: Any) -> None:
    state.ready += int(msg.data or 1)
    if state.ready >= environment.runner.target_user_count:
        _end(environment)


def _on_over(environment: Any, **_: Any) -> None:
    # A worker drops what it has not reported yet of the warm-up, keeping the set-up rows.
    state.ended_at = time.monotonic()
    environment.runner.send_message(DROPPED, _reset(environment))


def _on_dropped(environment: Any, msg: Any, **_: Any) -> None:
    if (done := state.result) is not None:
        requests, failures = msg.data
        more = {"requests": done.requests + requests, "failures": done.failures + failures}
        state.result = done.model_copy(update=more)


def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message(OVER, _on_over)
    elif runner is not None:
        runner.register_message(READY, _on_ready)
        runner.register_message(DROPPED, _on_dropped)


def _on_test_start(environment: Any, **_: Any) -> None:
    if _option(environment, "measure_s") > 0 and not isinstance(environment.runner, WorkerRunner):
        state.started_at = time.monotonic()
        warmup_max = _option(environment, "warmup_max_s", 120.0)
        gevent.spawn_later(warmup_max, _end, environment, cut_short=True)


def _on_cpu_warning(environment: Any, cpu_usage: float, **_: Any) -> None:
    state.peak_cpu = max(state.peak_cpu, cpu_usage)


def _on_quitting(environment: Any, **_: Any) -> None:
    path, runner = _option(environment, "notes_file"), environment.runner
    if not path or runner is None or isinstance(runner, WorkerRunner):
        return
    warnings = []
    if runner.cpu_warning_emitted:
        warnings.append(f"CPU usage above 90% (peak {state.peak_cpu:.0f}%)")
    if getattr(runner, "worker_cpu_warning_emitted", False):
        warnings.append("CPU usage above 90% on a worker")
    notes = LocustNotes(warmup=state.result, loadgen_warnings=warnings)
    Path(path).write_text(notes.model_dump_json(indent=2) + "\n")


def user_ready(environment: Any) -> None:
    """Call at the end of a user's `on_start`."""
    if _option(environment, "measure_s") > 0 and environment.runner is not None:
        environment.runner.send_message(READY, 1)


def add_options(parser: Any) -> None:
    parser.add_argument(
        "--measure-s",
        type=float,
        default=0.0,
        help="after the warm-up (every user logged in), measure this long and stop (0: off)",
    )
    parser.add_argument(
        "--warmup-max-s", type=float, default=120.0, help="end the warm-up by then regardless"
    )
    parser.add_argument(
        "--notes-file", default="", help="write the warm-up's figures and CPU warnings here"
    )


def install(keep: KeepRow) -> None:
    """Hook the warm-up into Locust; `keep(method, name)` says which rows are set-up rows."""
    state.keep = keep
    listen(events.init, _on_init)
    listen(events.test_start, _on_test_start)
    listen(events.cpu_warning, _on_cpu_warning)
    listen(events.quitting, _on_quitting)
    listen(events.init_command_line_parser, add_options)


def listen(hook: Any, listener: Callable[..., None]) -> None:
    """Add a listener to a Locust event hook (its own method is untyped)."""
    hook.add_listener(listener)


def seconds_since_over() -> float:
    return 0.0 if state.ended_at is None else time.monotonic() - state.ended_at
