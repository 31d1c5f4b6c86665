"""The comparison runner end to end: a few seconds of load on both stacks and on the legacy
door with every paired route served by v2 (`--on-v2`), reports written.

The runner starts everything itself (fresh databases, carrier stub, gateway) exactly as a
user would run it, so this also proves that nothing is left running afterwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOWS = {
    "GET /products",
    "GET /products?q={q}",
    "GET /products/{id}",
    "GET /customers?email={email}",
    "POST /customers",
    "POST /orders",
    "POST /orders/{id}/cancel",
    "GET /shipping/quote?order_id={id}",
    "POST /auth/token",
}
# The shop run's arms: the legacy users also run against the gateway with every paired route
# in v2, and must not tell the difference (no failures).
ARMS = ("legacy", "legacy-on-v2", "v2")


def _compare(*args: str, timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtests.compare", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("comparison")
    # Latency is not judged in a run this short (--max-p95-ratio): failures are. Long enough
    # that the rarest flow runs on each arm even on a loaded machine (4 s sometimes was not).
    result = _compare(
        "--users", "4", "--spawn-rate", "4", "--run-time", "8s", "--rate", "60",
        "--max-p95-ratio", "1000", "--on-v2", "--out", str(out), timeout_s=150,
    )  # fmt: skip
    return result, out


@pytest.fixture(scope="module")
def comparison(run: tuple[subprocess.CompletedProcess[str], Path]) -> dict[str, Any]:
    result, out = run
    assert result.returncode == 0, result.stdout + result.stderr
    loaded: dict[str, Any] = json.loads((out / "comparison.json").read_text())
    return loaded


def test_every_flow_ran_on_every_arm_without_failures(comparison: dict[str, Any]) -> None:
    assert comparison["mode"] == "rate"
    assert list(comparison["totals"]) == list(ARMS)
    rows = {row["name"]: row for row in comparison["operations"]}
    assert set(rows) >= FLOWS
    for name, row in rows.items():
        for arm in ARMS:
            assert row[arm]["requests"] > 0, (name, arm)
            assert row[arm]["failures"] == 0, (name, arm)
            assert row[arm]["p50"] <= row[arm]["p95"] <= row[arm]["p99"]
        assert row["verdict"] in {"pass", "not judged"}
    for arm, totals in comparison["totals"].items():
        assert totals["failures"] == 0, arm
        assert comparison["arms"][arm]["warmup"]["failures"] == 0, arm


def test_the_on_v2_arm_was_served_by_v2_and_set_against_both_others(
    run: tuple[subprocess.CompletedProcess[str], Path], comparison: dict[str, Any]
) -> None:
    result, out = run
    door = re.search(r"\[legacy-on-v2\] its legacy door answered (.*)", result.stdout)
    assert door is not None, result.stdout
    assert re.search(r"\b[1-9][\d,]* by v2", door[1]), door[1]
    row = next(r for r in comparison["operations"] if r["name"] == "GET /products/{id}")
    for name in ("legacy-on-v2/legacy", "legacy-on-v2/v2"):
        assert comparison["total_ratios"][name]["rps"] > 0, name
        assert row["ratios"][name]["p50"] > 0, name
        assert f"{name} overall: req/s" in (out / "comparison.md").read_text()
        assert f"{name} overall: req/s" in (out / "comparison.html").read_text()
    # Its row in the totals, and its colour in the charts.
    assert "<td>legacy-on-v2</td>" in (out / "comparison.html").read_text()
    assert 'stroke="#ff7f0e"' in (out / "comparison.html").read_text()


def test_each_arm_reports_its_server_peak_memory_beside_its_cpu(
    run: tuple[subprocess.CompletedProcess[str], Path], comparison: dict[str, Any]
) -> None:
    _, out = run
    for arm in ARMS:
        summary = comparison["arms"][arm]
        assert summary["cpu_ms_per_request"] > 0, arm
        # One gateway process (no --server-workers), sampled while the arm ran: a Python
        # process holding Flask, FastAPI and SQLAlchemy is tens of MiB at least.
        assert summary["server_rss"]["processes"] == 1, summary["server_rss"]
        assert 20 < summary["server_rss"]["peak_mib"] < 4096, summary["server_rss"]
        assert summary["server_rss"]["samples"] > 1, summary["server_rss"]
    assert comparison["total_ratios"]["v2/legacy"]["server_rss_peak"] > 0
    markdown = (out / "comparison.md").read_text()
    html = (out / "comparison.html").read_text()
    assert "| server CPU / request | server RSS (peak) |" in markdown
    assert re.search(r">server CPU / request</th>\s*<th[^>]*>server RSS \(peak\)</th>", html)
    for arm in ("legacy", "v2"):
        peak = f"{comparison['arms'][arm]['server_rss']['peak_mib']:,.0f} MiB"
        assert peak in markdown and peak in html, (arm, peak)


def test_the_reports_are_written(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = run
    markdown = (out / "comparison.md").read_text()
    html = (out / "comparison.html").read_text()
    for name in ("GET /products/{id}", "POST /orders"):
        assert name in markdown
        assert name in html
    assert "<svg" in html
    # Self-contained: nothing to fetch from a network the machine may not have.
    assert "<script" not in html and "<link" not in html
    for arm in ("legacy", "v2"):
        assert (out / f"{arm}.html").stat().st_size > 0
        assert (out / f"{arm}_stats.csv").read_text().startswith("Type,Name")
        assert (out / f"{arm}_stats_history.csv").stat().st_size > 0


def test_a_failed_threshold_makes_the_exit_code_non_zero(
    run: tuple[subprocess.CompletedProcess[str], Path], comparison: dict[str, Any]
) -> None:
    _, out = run
    # Judge the same results again, allowing v2 no latency at all.
    result = _compare(
        "--report-only", "--out", str(out),
        "--max-p95-ratio", "0", "--p95-slack-ms", "0", "--min-requests", "1",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    rejudged = json.loads((out / "comparison.json").read_text())
    assert rejudged["verdict"] == "fail"
    assert "GET /shipping/quote?order_id={id}" in rejudged["failed_checks"]
    # The failed operations stand out of the report's table, in bold.
    quote_row = next(
        line
        for line in (out / "comparison.md").read_text().splitlines()
        if line.startswith("| `GET /shipping/quote")
    )
    assert "| **fail**" in quote_row
    assert "<strong>fail</strong>" in (out / "comparison.html").read_text()


# Another team's pair: the notes pair (tests/notes_pair), with its own locustfile, served by
# `gateway serve --legacy ... --v2 ...` that the runner starts per arm, and its legacy app
# alone under gunicorn for the baseline arm.

NOTES_FLOWS = {
    "POST /notes",
    "GET /notes/{id}",
    "GET /notes",
    "POST /notes (empty)",
    "GET /notes/{id} (missing)",
}
NOTES_ARMS = ("legacy", "v2", "baseline")


@pytest.fixture(scope="module")
def notes_comparison(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("notes-comparison")
    result = _compare(
        "-f", "tests/notes_pair/locustfile.py",
        "--legacy", "tests.notes_pair.legacy:create_app", "--v2", "tests.notes_pair.v2:app",
        "--legacy-errors", "tests.notes_pair.errors:legacy_error",
        "--v2-errors", "tests.notes_pair.errors:v2_error",
        "--baseline", "--baseline-wsgi", "tests.notes_pair.legacy:create_app()",
        "--users", "4", "--spawn-rate", "4", "--run-time", "4s", "--rate", "60",
        "--max-p95-ratio", "1000", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    loaded: dict[str, Any] = json.loads((out / "comparison.json").read_text())
    return loaded


def test_a_team_pair_gets_every_operation_of_its_locustfile_on_every_arm(
    notes_comparison: dict[str, Any],
) -> None:
    assert set(notes_comparison["totals"]) == set(NOTES_ARMS)
    rows = {row["name"]: row for row in notes_comparison["operations"]}
    assert set(rows) == NOTES_FLOWS
    for name, row in rows.items():
        for arm in NOTES_ARMS:
            assert row[arm]["requests"] > 0, (name, arm)
            assert row[arm]["failures"] == 0, (name, arm)
    settings = notes_comparison["settings"]
    assert settings["locustfile"] == "tests/notes_pair/locustfile.py"
    assert "--legacy tests.notes_pair.legacy:create_app" in settings["servers"]
