"""`python -m loadtests.bench` end to end: two seconds of load per load, the ratios written.

The bench starts everything itself (fresh database, carrier stub, gateway, the gateway with
every paired route on v2, v2 alone under uvicorn, the Flask app under gunicorn), as `make
bench` does, so this keeps it from rotting.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtests import bench_plan as plan
from loadtests.bench import Figures, build_report, exit_code
from tests.conftest import BACKENDS, POSTGRES_ADMIN_URL

REPO = Path(__file__).resolve().parents[2]
PAIRS = ["products-id", "legacy-on-v2-legacy", "tax-v2", "tax-legacy-sync"]


@pytest.fixture(scope="module", params=BACKENDS)
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed: apt-get install -y wrk (.ci/run and make bench do it)")
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    command = [sys.executable, "-m", "loadtests.bench", "--duration", "2", "--rounds", "1"]
    command += ["--connections", "8", "--out", str(out), "--only", *PAIRS]
    if request.param == "postgresql":
        assert POSTGRES_ADMIN_URL is not None
        command += ["--database-url", POSTGRES_ADMIN_URL]
    result = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    return result, out


def test_the_bench_writes_ratios_of_real_figures(
    run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, out = run
    # No --check: the targets are judged by `make bench`, not by a one-second run.
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["database"] in BACKENDS
    assert [row["name"] for row in report["pairs"]] == PAIRS
    for row in report["pairs"]:
        assert row["numerator"]["rps"] > 0 and row["denominator"]["rps"] > 0, row
        assert row["ratio"] == pytest.approx(
            row["numerator"]["rps"] / row["denominator"]["rps"], rel=0.01
        )
        # legacy-on-v2 is reported only.
        judged = row["name"] != "legacy-on-v2-legacy"
        assert (row["target"] is not None) == judged, row
        assert row["met"] in ({True, False} if judged else {None}), row
    assert report["failed_requests"] == 0
    assert {load["load"] for load in report["loads"]} == {
        load.label() for load in plan.loads_of(plan.select(PAIRS))
    }
    servers = {plan.GATEWAY, plan.ON_V2, plan.V2_ALONE, plan.GUNICORN_SYNC}
    assert set(report["peak_rss_mb"]) == servers
    assert all(20 < rss < 2000 for rss in report["peak_rss_mb"].values())
    # The table is printed too, and each load's tail latency.
    assert "| gateway tax, v2: via gateway / alone |" in result.stdout
    assert "| load | p99 (ms) | max (ms) |" in result.stdout
    for load in report["loads"]:
        # One figure per round, and on PostgreSQL per group of servers that runs the load.
        assert len(load["max_ms"]) == len(load["p99_ms"]) == len(load["rps"]) >= 1, load
        for slowest, p99 in zip(load["max_ms"], load["p99_ms"], strict=True):
            assert slowest >= p99 > 0, load
    # The on-v2 server's legacy door was answered by v2 (the health checks by legacy).
    assert re.search(rf"{plan.ON_V2}: its legacy door answered .*[1-9][\d,]* by v2", result.stdout)


def test_check_fails_on_a_missed_target_and_failed_requests_always_fail() -> None:
    pair = plan.select(["products-id"])[0]
    assert isinstance(pair.denominator, plan.Load)

    def report(v2_rps: float, failed: int = 0) -> dict[str, Any]:
        figures = {
            pair.numerator: Figures(rps=[v2_rps], rss_mb=[100.0]),
            pair.denominator: Figures(rps=[100.0], rss_mb=[100.0], failed=failed),
        }
        return build_report([pair], figures, "sqlite", {plan.GATEWAY: 100.0})

    missed = report(v2_rps=250.0)
    assert missed["targets_missed"] == ["products-id"]
    assert exit_code(missed, check=True) == 1
    assert exit_code(missed, check=False) == 0
    assert exit_code(report(v2_rps=300.0), check=True) == 0
    assert exit_code(report(v2_rps=300.0, failed=3), check=False) == 1
