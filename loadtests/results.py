"""Reading one arm's Locust output: final statistics, the history over time, its notes.

The final numbers come from Locust's `--json-file`, written after the last request: its
CSV is rewritten once a second and can miss the final second. Percentiles are computed
the way Locust computes them, over its response-time histograms of the rows merged (not
with Locust's own function: importing `locust` would monkey-patch the runner with gevent).
The history (`--csv-full-history`) gives throughput and rolling percentiles over time.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.schema import ArmSummary, Failure, LocustNotes, OpStats

AGGREGATED = "Aggregated"
# Rows only the users' set-up sends; they keep their warm-up numbers (see warmup.py).
SETUP_OPERATIONS = frozenset({"POST /auth/token", "GET /customers"})


@dataclass(frozen=True)
class Sample:
    """One second of the arm's history, all operations together.

    `epoch` counts statistics resets: the end of the warm-up starts epoch 1.
    """

    t: float
    epoch: int
    users: int
    rps: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    total_requests: int


@dataclass
class ArmResult:
    """One arm's numbers, and what is known of the arm before it is judged (its `summary`,
    which the verdicts complete)."""

    summary: ArmSummary
    operations: dict[str, OpStats]
    total: OpStats
    history: list[Sample]
    duration_s: float
    loadgen_warnings: list[str]


def percentile(histogram: Counter[int], count: int, fraction: float) -> float:
    """Locust's percentile over its histogram of rounded response times."""
    wanted, seen = int(count * fraction), 0
    for response_time in sorted(histogram, reverse=True):
        seen += histogram[response_time]
        if count - seen <= wanted:
            return float(response_time)
    return 0.0


def _stats(entries: list[dict[str, Any]], duration_s: float) -> OpStats:
    histogram: Counter[int] = Counter()
    for entry in entries:
        histogram.update({int(k): int(v) for k, v in entry["response_times"].items()})
    requests = sum(int(e["num_requests"]) for e in entries)
    timed = sum(histogram.values())
    total_time = sum(float(e["total_response_time"]) for e in entries)
    failures = sum(int(e["num_failures"]) for e in entries)
    return OpStats(
        requests=requests,
        failures=failures,
        failure_ratio=round(failures / requests, 6) if requests else 0.0,
        rps=round(requests / duration_s, 2) if duration_s > 0 else 0.0,
        avg=round(total_time / timed, 2) if timed else 0.0,
        p50=percentile(histogram, timed, 0.50),
        p95=percentile(histogram, timed, 0.95),
        p99=percentile(histogram, timed, 0.99),
        max=round(max((float(e["max_response_time"]) for e in entries), default=0.0), 2),
    )


def operation_key(method: str, name: str, prefix: str) -> str:
    """`GET /products/{id}` for `/v2/products/{id}`: the same key in every arm."""
    return f"{method} {name.removeprefix(prefix)}"


def read_final_stats(
    path: Path, prefix: str, window_s: float | None = None
) -> tuple[dict[str, OpStats], OpStats, float]:
    """Per-operation statistics, all operations together, and the seconds they cover.

    Rates are over `window_s`, the planned measured window, when given: every arm then
    divides by the same time, and an operation every arm ran equally often (a set-up
    request per user) gets equal rates rather than ones that differ in the last digit.
    """
    entries: list[dict[str, Any]] = json.loads(path.read_text())
    if not entries:
        raise ValueError(f"{path}: Locust recorded no requests")
    start = min(float(e["start_time"]) for e in entries)
    end = max(float(e["last_request_timestamp"] or e["start_time"]) for e in entries)
    duration = window_s if window_s else end - start
    grouped: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        key = operation_key(entry["method"], entry["name"], prefix)
        grouped.setdefault(key, []).append(entry)
    operations = {key: _stats(group, duration) for key, group in sorted(grouped.items())}
    return operations, _stats(entries, duration), duration


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # Locust writes "N/A" before the first response


def read_history(path: Path, reset_at: float | None = None) -> list[Sample]:
    """One sample per history row; throughput from the change in the request count.

    (Locust's own Requests/s column is a 10 s moving average, too smooth to show a ramp.)
    Rows stamped after `reset_at` (the end of the warm-up, Unix time) are epoch 1. Stamps
    are whole seconds, so the row of the reset's own second may be either: no rate is
    computed across it.
    """
    with path.open(newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["Name"] == AGGREGATED]
    samples: list[Sample] = []
    start = int(rows[0]["Timestamp"]) if rows else 0
    first_measured = math.ceil(reset_at) if reset_at is not None else None
    previous: Sample | None = None
    for row in rows:
        stamp, total = int(row["Timestamp"]), int(row["Total Request Count"])
        if previous is not None and stamp - start <= previous.t:
            continue
        epoch = 1 if first_measured is not None and stamp >= first_measured else 0
        rps: float | None = None
        if previous is not None and previous.epoch == epoch and total >= previous.total_requests:
            rps = round((total - previous.total_requests) / (stamp - start - previous.t), 2)
        # Right after a reset Locust's rolling window is empty and reads 0: no data, not 0 ms.
        p50, p95, p99 = (_number(row[column]) for column in ("50%", "95%", "99%"))
        if not p99:
            p50 = p95 = p99 = None
        t, users = float(stamp - start), int(row["User Count"])
        previous = Sample(t, epoch, users, rps, p50, p95, p99, total_requests=total)
        samples.append(previous)
    return samples


def read_notes(path: Path) -> LocustNotes:
    """The warm-up's figures and Locust's CPU warnings, as its master wrote them."""
    return LocustNotes.model_validate_json(path.read_text()) if path.exists() else LocustNotes()


def read_errors(path: Path, limit: int = 10) -> list[Failure]:
    """The most frequent failures (Locust's failures CSV, as of its last write)."""
    if not path.exists():
        return []
    with path.open(newline="") as file:
        rows = sorted(csv.DictReader(file), key=lambda row: -int(row["Occurrences"]))
    return [Failure(**{key.lower(): value for key, value in row.items()}) for row in rows[:limit]]
