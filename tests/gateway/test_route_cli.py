"""`gateway routes ...` as an operator uses it from a shell, and `gateway serve` with a ledger:
the same statuses as the admin API, straight in the control database; and two `gateway
serve` processes over one control database agreeing within 2 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway import cli
from tests.gateway.control_database import BACKENDS, control_database
from tests.gateway.test_cli import _free_port
from tests.support import wait_for

PAIR = "tests.gateway.ledger_pair:NotesLedgerPair"
REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "an-admin-token-" + "t" * 32


@pytest.fixture(autouse=True)
def _no_settings_of_the_test_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    yield
    # `gateway serve` passes its options to worker processes as GATEWAY_* variables: none
    # may reach the servers that later tests start.
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            del os.environ[name]


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    # Not migrated: every `gateway routes` command brings the tables up to date itself.
    with control_database("sqlite", tmp_path, migrated=False) as database_url:
        yield database_url


def _routes(url: str, *args: str) -> None:
    cli.main(["routes", "--pair", PAIR, "--control-database-url", url, *args])


def _listed(url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    capsys.readouterr()
    _routes(url, "list", "--json")
    return {route["id"]: route for route in json.loads(capsys.readouterr().out)}


def test_list_shows_every_route(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _routes(url, "list")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "SHARE", "DEPRECATION", "SUNSET", "LEGACY", "V2"]
    assert [line.split()[0] for line in lines[1:]] == [
        "notes.list",
        "notes.read",
        "notes.create",
        "slow",
    ]
    assert "(no adapter)" in lines[3]
    assert "legacy-only: a test route, never moved" in lines[4]


def test_set_and_announce_change_the_status_and_record_it(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _routes(url, "--actor", "ops-2", "set", "notes.read", "v2", "--reason", "v2 passed")
    assert capsys.readouterr().out.strip() == "notes.read: legacy -> v2"
    _routes(url, "announce", "notes.read", "--deprecation", "2027-01-31", "--sunset", "2027-06-30")
    assert "sunset 2027-06-30T00:00:00+00:00" in capsys.readouterr().out
    routes = _listed(url, capsys)
    assert routes["notes.read"]["state"] == "v2"
    assert routes["notes.read"]["deprecation"] == "2027-01-31T00:00:00Z"
    _routes(url, "announce", "notes.read", "--sunset", "none")
    assert _listed(url, capsys)["notes.read"]["sunset"] is None
    assert _listed(url, capsys)["notes.read"]["deprecation"] == "2027-01-31T00:00:00Z"


def test_set_moves_several_routes_or_every_paired_one_in_one_call(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _routes(url, "set", "notes.list", "notes.read", "retired", "--reason", "nobody calls them")
    assert capsys.readouterr().out.splitlines() == [
        "notes.list: legacy -> retired",
        "notes.read: legacy -> retired",
    ]
    # Every route with an adapter: notes.create has none, and `slow` is legacy-only.
    _routes(url, "set", "--all-paired", "v2")
    assert capsys.readouterr().out.splitlines() == [
        "notes.list: retired -> v2",
        "notes.read: retired -> v2",
    ]
    states = {route_id: route["state"] for route_id, route in _listed(url, capsys).items()}
    assert states == {
        "notes.list": "v2",
        "notes.read": "v2",
        "notes.create": "legacy",
        "slow": "legacy",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "notes.create", "v2"], "no adapter"),
        # Checked before anything changes: notes.read, first and allowed, stays legacy too.
        (["set", "notes.read", "notes.create", "v2"], "no adapter"),
        (["set", "v2"], "--all-paired"),
        (["set", "--all-paired", "notes.read", "v2"], "not both"),
        (["set", "notes.nothing", "v2"], "no route 'notes.nothing'"),
        (["set", "notes.create", "canary"], "no adapter"),
        (
            ["announce", "notes.read", "--deprecation", "2027-06-30", "--sunset", "2027-01-31"],
            "sunset",
        ),
        (["announce", "notes.read"], "--deprecation"),
    ],
)
def test_a_refused_change_says_why_and_changes_nothing(
    url: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        _routes(url, *args)
    assert message in str(exited.value.code)
    routes = _listed(url, capsys)
    assert {route["state"] for route in routes.values()} == {"legacy"}
    assert all(route["sunset"] is None for route in routes.values())


def test_a_bad_date_or_state_is_a_usage_error(url: str) -> None:
    for args in (["announce", "notes.read", "--sunset", "soon"], ["set", "notes.read", "up"]):
        with pytest.raises(SystemExit) as exited:
            _routes(url, *args)
        assert exited.value.code == 2


def test_without_a_control_database_serve_and_routes_refuse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["routes", "--pair", PAIR, "list"])
    assert "GATEWAY_CONTROL_DATABASE_URL" in str(exited.value.code)
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--pair", PAIR, "--port", "1"])
    assert "GATEWAY_CONTROL_DATABASE_URL" in str(exited.value.code)


class _Process:
    def __init__(self, url: str, workdir: Path, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log = workdir / f"serve-{port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
            "PYTHONPATH": str(REPO_ROOT),
            "GATEWAY_CONTROL_DATABASE_URL": url,
            "GATEWAY_ADMIN_TOKEN": TOKEN,
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--pair", PAIR, "--port", str(port)],
                cwd=workdir,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def state(self, route_id: str) -> str | None:
        assert self.process.poll() is None, self.log.read_text()
        try:
            answer = requests.get(
                f"{self.base}/_gateway/routes",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=5,
            )
        except requests.ConnectionError:
            return None
        states = {route["id"]: route["state"] for route in answer.json()["routes"]}
        return str(states[route_id])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_serve_processes_see_a_change_of_the_command_line_within_two_seconds(
    backend: str, tmp_path: Path
) -> None:
    with control_database(backend, tmp_path, migrated=False) as url:
        processes = [_Process(url, tmp_path, _free_port()) for _ in range(2)]
        try:
            for process in processes:
                wait_for(lambda p=process: p.state("notes.list"), "gateway serve up", timeout_s=60)
            _routes(url, "set", "notes.list", "retired", "--reason", "nobody calls it")
            for process in processes:
                wait_for(
                    lambda p=process: p.state("notes.list") == "retired",
                    "both processes serving the change",
                    timeout_s=2.0,
                )
        finally:
            for process in processes:
                process.stop()


def test_set_canary_with_a_share(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _routes(url, "set", "notes.read", "canary", "--share", "10", "--reason", "try v2")
    assert "notes.read: legacy -> canary, share 10%" in capsys.readouterr().out
    listed = _listed(url, capsys)["notes.read"]
    assert (listed["state"], listed["share"]) == ("canary", 10)
    # Kept when a later change does not give it.
    _routes(url, "set", "notes.read", "legacy")
    assert _listed(url, capsys)["notes.read"]["share"] == 10
