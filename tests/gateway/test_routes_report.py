"""`gateway routes report`: the dashboard's readiness table in a terminal, asked of a running
gateway over HTTP, with the same numbers as `GET /_gateway/readiness`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gateway import cli
from tests.gateway.dashboard_gateway import TOKEN, gateway, same_note_on_both_sides
from tests.support import wait_for

__all__ = ["gateway"]  # the fixture
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _no_settings_of_the_test_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    yield


def _shadowed_with_three_matches(base: str) -> None:
    note = same_note_on_both_sides(base)
    requests.patch(
        f"{base}/_gateway/routes/notes.read",
        json={"state": "shadow", "reason": "compare"},
        headers=AUTH,
        timeout=10,
    ).raise_for_status()
    for _ in range(3):
        requests.get(f"{base}/legacy/notes/{note['id']}", timeout=10).raise_for_status()

    def compared() -> bool:
        summary = requests.get(f"{base}/_gateway/readiness", headers=AUTH, timeout=10).json()
        return any(r["shadow"] and r["shadow"]["compared"] == 3 for r in summary["routes"])

    wait_for(compared, "three comparisons")


def test_the_table_shows_each_route_its_parity_and_verdict(
    gateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _shadowed_with_three_matches(gateway)
    cli.main(["routes", "report", "--url", gateway, "--token", TOKEN])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "SHARE", "PARITY", "COMPARED", "VERDICT"]
    (read,) = [line for line in lines if line.startswith("notes.read ")]
    assert read.split()[:5] == ["notes.read", "shadow", "100%", "100.00%", "3"]
    assert read.endswith("ready to cut over: 3 of 3 answers matched")
    served = lines[lines.index(read) + 1].strip()
    assert served.startswith("legacy: 3 requests (100%), p50 ")
    (slow,) = [line for line in lines if line.startswith("slow ")]
    assert "not ready: a test route, never moved" in slow
    assert lines[-1].startswith("(this process's figures over the last 300 s; thresholds: 3")


def test_json_is_what_the_dashboard_reads(
    gateway: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _shadowed_with_three_matches(gateway)
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", TOKEN)  # the token from the environment
    cli.main(["routes", "report", "--url", gateway, "--json"])
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    served: dict[str, Any] = requests.get(
        f"{gateway}/_gateway/readiness", headers=AUTH, timeout=10
    ).json()

    def figures(report: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [
            (r["id"], r["state"], r["verdict"], r["why"], r["shadow"], len(r["implementations"]))
            for r in report["routes"]
        ]

    assert figures(printed) == figures(served)
    assert printed["policy"] == served["policy"]


def test_a_wrong_token_or_no_gateway_is_said_plainly(gateway: str) -> None:
    with pytest.raises(SystemExit, match=r"answered 401 \(not this admin token\?\)"):
        cli.main(["routes", "report", "--url", gateway, "--token", "wrong"])
    with pytest.raises(SystemExit, match="give --token or set GATEWAY_ADMIN_TOKEN"):
        cli.main(["routes", "report", "--url", gateway])


def test_its_help_says_it_asks_a_running_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["routes", "report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "RUNNING gateway" in text and "GET /_gateway/readiness over HTTP" in text
