"""The comparison runner's legacy-shadow arm end to end: a few seconds of read-only load on a
gateway that shadows two routes at 100 %, and what the reports say about it.

Read-only flows, so that no write lands between a legacy answer and its shadow call: then
every compared answer must match.
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
SHADOWED = ("products.read", "products.list")
COUNTS = ("compared", "matched", "mismatched", "errored", "dropped")


def _compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtests.compare", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shadow-comparison")
    result = _compare(
        "--users", "2", "--spawn-rate", "2", "--run-time", "3s", "--rate", "40",
        "--tags", "browse", "product", "--shadow-routes", *SHADOWED,
        "--max-p95-ratio", "1000", "--max-shadow-p95-ratio", "1000", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def comparison(out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((out / "comparison.json").read_text())
    return loaded


def test_the_shadow_arm_runs_beside_legacy_with_its_cost(comparison: dict[str, Any]) -> None:
    assert set(comparison["totals"]) == {"legacy", "legacy-shadow", "v2"}
    assert comparison["totals"]["legacy-shadow"]["requests"] > 0
    assert comparison["totals"]["legacy-shadow"]["failures"] == 0
    cost = comparison["total_ratios"]["legacy-shadow/legacy"]
    assert cost["p95"] > 0 and cost["cpu_per_request"] > 0
    rows = {row["name"]: row for row in comparison["operations"]}
    assert rows["GET /products/{id}"]["legacy-shadow"]["requests"] > 0


def test_every_shadowed_answer_matched_and_none_was_lost(comparison: dict[str, Any]) -> None:
    shadow = comparison["arms"]["legacy-shadow"]["shadow"]
    assert set(shadow) == set(SHADOWED)
    for route_id, found in shadow.items():
        assert found["compared"] > 0, route_id
        assert found["matched"] == found["compared"], found
        assert found["errored"] == found["dropped"] == 0, found
    # Only the chosen routes were shadowed, and the other arms carry no shadow results.
    assert comparison["arms"]["legacy"]["shadow"] is None


def test_the_reports_show_the_shadow_results(out: Path, comparison: dict[str, Any]) -> None:
    matched = comparison["arms"]["legacy-shadow"]["shadow"]["products.read"]["matched"]
    row = f"| products.read | {matched:,} | {matched:,} | 0 | 0 | 0 | 100.00% |"
    assert row in (out / "comparison.md").read_text()
    html = (out / "comparison.html").read_text()
    assert "Shadow results (legacy-shadow)" in html
    assert re.search(rf"<td>products.read</td>\s*<td[^>]*>{matched:,}</td>", html)


def test_a_shadow_arm_slower_than_allowed_fails_the_run(out: Path) -> None:
    result = _compare(
        "--report-only", "--out", str(out), "--max-p95-ratio", "1000",
        "--max-shadow-p95-ratio", "0", "--p95-slack-ms", "0",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    rejudged = json.loads((out / "comparison.json").read_text())
    assert any(check.startswith("legacy-shadow p95") for check in rejudged["failed_checks"])
    # The shadow results survive the re-judging.
    assert rejudged["arms"]["legacy-shadow"]["shadow"]["products.read"]["compared"] > 0
