"""Any app pair behind the gateway: the notes pair (tests/notes_pair), which is not the shop.

The gateway is pointed at the pair the way a team points it at its own apps, on the
command line (`gateway serve --legacy ... --v2 ... --legacy-errors ... --v2-errors ...
--check ...`), and served as a subprocess on a real port, its output (JSON log lines)
captured to a file. Its limits are set small so that they are quick to reach: a 2 KiB
body limit, one legacy thread with a 0.5 s queue, a 1 s body deadline.

The first tests check the two apps on their own, in process, so that a failure of the
served tests points at the gateway rather than at the pair.

Where the shape of an answer is not fixed by the contract (the JSON of /health, the
placeholder syntax of a Flask route label, the keys of a log record), one small helper
states what is accepted, so that it can be tightened in one place.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gateway.background_server import BackgroundServer
from shop_core.database import temporary_postgres_database
from tests.conftest import BACKENDS, POSTGRES_ADMIN_URL
from tests.notes_pair import checks, dialects, errors, legacy, v2
from tests.support import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_BODY_BYTES = 2048
LEGACY_QUEUE_TIMEOUT_S = 0.5
BODY_TIMEOUT_S = 1.0
START_TIMEOUT_S = 60.0  # a cold start on a busy machine: imports, migrations
WAIT_S = 10.0  # how long a log line or a change of /health may take to show
SLOW_S = 2.5  # how long the slow legacy request holds the only legacy thread
REQUEST_ID = "test-abc-123"
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# How the gateway may label the Flask route `/notes/<int:note_id>`: as Flask writes it, or
# normalised to FastAPI's placeholder syntax.
LEGACY_NOTE_ROUTES = {"/notes/<int:note_id>", "/notes/{note_id}"}
V2_NOTE_ROUTES = {"/notes/{note_id}"}

T = TypeVar("T")


# What each side's errors look like: the pair's formats, never RFC 9457 problem details.


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    @classmethod
    def of(cls, response: requests.Response) -> Answer:
        return cls(response.status_code, response.headers.get("content-type", ""), response.content)


def assert_legacy_fault(answer: Answer, status: int) -> None:
    """The legacy side's `{"fault": {"status", "code", "reason"}}`, as `application/json`."""
    assert answer.status == status, answer.body
    problem = dialects.LEGACY.error_problem(status, answer.content_type, json.loads(answer.body))
    assert problem is None, problem


def assert_v2_error(answer: Answer, status: int) -> None:
    """The v2 side's `{"error_code", "status", "detail"}`, as its own media type."""
    assert answer.status == status, answer.body
    problem = dialects.V2.error_problem(status, answer.content_type, json.loads(answer.body))
    assert problem is None, problem


ERROR_FORMATS: dict[str, Callable[[Answer, int], None]] = {
    "legacy": assert_legacy_fault,
    "v2": assert_v2_error,
}


# The two apps on their own, in process.


def test_legacy_app_alone_serves_notes_and_answers_faults(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="notes.legacy")
    client = legacy.create_app().test_client()
    created = client.post("/notes", json={"text": "first"}, headers={"X-Request-ID": "alone-1"})
    assert created.status_code == 201, created.text
    note = created.get_json()
    assert note == {"id": note["id"], "text": "first"}
    assert client.get(created.headers["Location"]).get_json() == note
    assert client.get("/notes").get_json() == {"notes": [note]}
    assert any("alone-1" in record.getMessage() for record in caplog.records)

    def answer(response: Any) -> Answer:
        return Answer(response.status_code, response.content_type, response.data)

    assert_legacy_fault(answer(client.get("/notes/999")), 404)
    not_allowed = client.delete("/notes")
    assert_legacy_fault(answer(not_allowed), 405)
    assert "POST" in not_allowed.headers["Allow"]
    malformed = client.post("/notes", data="{", content_type="application/json")
    assert_legacy_fault(answer(malformed), 400)
    assert_legacy_fault(answer(client.post("/notes", json={"text": ""})), 400)
    assert_legacy_fault(answer(client.get("/slow", query_string={"seconds": "99"})), 400)
    assert client.get("/slow", query_string={"seconds": "0"}).get_json() == {"slept": 0.0}
    assert client.get("/notes").get_json() == {"notes": [note]}  # refused input changed nothing


def test_v2_app_alone_runs_its_lifespan_and_answers_its_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="notes.v2")
    with BackgroundServer(v2.app) as server:
        ran = requests.get(f"{server.url}/lifespan", timeout=10)
        assert (ran.status_code, ran.json()) == (200, {"lifespan_ran": True})
        created = requests.post(
            f"{server.url}/notes",
            json={"text": "first"},
            headers={"X-Request-ID": "alone-2"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        note = created.json()
        assert note == {"id": note["id"], "text": "first"}
        got = requests.get(server.url + created.headers["Location"], timeout=10)
        assert got.json() == note
        assert requests.get(f"{server.url}/notes", timeout=10).json() == {"notes": [note]}
        missing = requests.get(f"{server.url}/notes/999", timeout=10)
        assert_v2_error(Answer.of(missing), 404)
        unknown_field = requests.post(
            f"{server.url}/notes", json={"text": "x", "colour": "red"}, timeout=10
        )
        assert_v2_error(Answer.of(unknown_field), 422)
        not_allowed = requests.delete(f"{server.url}/notes/{note['id']}", timeout=10)
        assert_v2_error(Answer.of(not_allowed), 405)
        assert not_allowed.headers["Allow"] == "GET"
    assert any("alone-2" in record.getMessage() for record in caplog.records)
    # The way out closed the database.
    assert any(record.getMessage() == "notes database closed" for record in caplog.records)
    assert not hasattr(v2.app.state, "notes_db")


def test_v2_app_without_its_lifespan_answers_500() -> None:
    with BackgroundServer(v2.app, lifespan="off") as server:
        for answer in (
            requests.get(f"{server.url}/lifespan", timeout=10),
            requests.get(f"{server.url}/notes/1", timeout=10),
            requests.get(f"{server.url}/notes", timeout=10),
            requests.post(f"{server.url}/notes", json={"text": "x"}, timeout=10),
        ):
            assert_v2_error(Answer.of(answer), 500)
            assert "lifespan" in answer.json()["detail"]


def test_error_renderers_write_each_apps_own_format() -> None:
    content_type, body = errors.legacy_error(413, "payload_too_large", "body over 2048 bytes")
    assert_legacy_fault(Answer(413, content_type, body), 413)
    flask_404 = legacy.create_app().test_client().get("/notes/1").get_json()
    assert set(json.loads(body)["fault"]) == set(flask_404["fault"])

    content_type, body = errors.v2_error(408, "request_timeout", "body not received in 1 s")
    assert_v2_error(Answer(408, content_type, body), 408)
    assert json.loads(body) == {
        "error_code": "request_timeout",
        "status": 408,
        "detail": "body not received in 1 s",
    }


def test_readiness_check_follows_the_down_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    down_file = tmp_path / "down"
    monkeypatch.delenv(checks.DOWN_FILE_VARIABLE, raising=False)
    assert asyncio.run(checks.notes_ready()) is True
    monkeypatch.setenv(checks.DOWN_FILE_VARIABLE, str(down_file))
    assert asyncio.run(checks.notes_ready()) is True
    down_file.touch()
    assert asyncio.run(checks.notes_ready()) is False


# The pair behind `gateway serve`, a subprocess.


@dataclass(frozen=True)
class Served:
    host: str
    port: int
    output: Path
    down_file: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def get(self, path: str, *, timeout: float = 15, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=timeout, **kwargs)

    def post(self, path: str, *, timeout: float = 15, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=timeout, **kwargs)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records the server has written so far (other lines are skipped)."""
        records = []
        for line in self.text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


def _command(port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "gateway", "serve"),
        *("--legacy", "tests.notes_pair.legacy:create_app"),
        *("--v2", "tests.notes_pair.v2:app"),
        *("--legacy-errors", "tests.notes_pair.errors:legacy_error"),
        *("--v2-errors", "tests.notes_pair.errors:v2_error"),
        *("--check", "notes=tests.notes_pair.checks:notes_ready"),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]


def _environment(database_url: str, down_file: Path) -> dict[str, str]:
    # Only the settings below: none of the test run's own GATEWAY_* variables.
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")
    }
    return inherited | {
        # The pair is importable from the repository's root; the server runs elsewhere, in
        # a scratch directory, so that nothing it writes lands in the checkout.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "GATEWAY_LEGACY_WORKERS": "1",
        "GATEWAY_LEGACY_QUEUE_TIMEOUT_S": str(LEGACY_QUEUE_TIMEOUT_S),
        "GATEWAY_BODY_TIMEOUT_S": f"{BODY_TIMEOUT_S:g}",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_LOG_LEVEL": "INFO",
        checks.DOWN_FILE_VARIABLE: str(down_file),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def _database(backend: str, workdir: Path) -> Iterator[str]:
    """An empty database for whatever state the gateway keeps; the pair itself needs none."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'gateway.db'}"
        return
    assert POSTGRES_ADMIN_URL is not None
    with temporary_postgres_database(POSTGRES_ADMIN_URL) as url:
        yield url


def _wait_until_up(process: subprocess.Popen[bytes], served: Served) -> None:
    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"gateway serve exited with {process.returncode}:\n{served.text()}")
        try:
            served.get("/health", timeout=2)
        except requests.ConnectionError:
            return False
        return True

    wait_for(up, "/health of gateway serve", timeout_s=START_TIMEOUT_S)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("notes-pair")
    port = _free_port()
    served = Served("127.0.0.1", port, workdir / "server.log", workdir / "notes-down")
    with _database(request.param, workdir) as database_url:
        with served.output.open("wb") as sink:
            process = subprocess.Popen(
                _command(port),
                cwd=workdir,
                env=_environment(database_url, served.down_file),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_up(process, served)
            yield served
        finally:
            _stop(process)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM), served.text()
    # The gateway ran the v2 app's lifespan on the way out too.
    assert "notes database closed" in served.text(), served.text()


def _create(served: Served, side: str, text: str) -> dict[str, Any]:
    created = served.post(f"/{side}/notes", json={"text": text})
    assert created.status_code == 201, created.text
    note: dict[str, Any] = created.json()
    assert note["text"] == text
    followed = served.get(created.headers["Location"])
    assert (followed.status_code, followed.json()) == (200, note)
    return note


def test_both_prefixes_answer(served: Served) -> None:
    legacy_note = _create(served, "legacy", "written through /legacy")
    v2_note = _create(served, "v2", "written through /v2")
    assert served.get(f"/legacy/notes/{legacy_note['id']}").json() == legacy_note
    assert legacy_note in served.get("/legacy/notes").json()["notes"]
    assert served.get(f"/v2/notes/{v2_note['id']}").json() == v2_note
    assert v2_note in served.get("/v2/notes").json()["notes"]


def test_the_v2_lifespan_ran(served: Served) -> None:
    answer = served.get("/v2/lifespan")
    assert (answer.status_code, answer.json()) == (200, {"lifespan_ran": True})


@pytest.mark.parametrize("side", ["legacy", "v2"])
def test_a_body_over_the_limit_gets_413_in_the_sides_format(served: Served, side: str) -> None:
    before = served.get(f"/{side}/notes").json()
    answer = served.post(
        f"/{side}/notes",
        data=json.dumps({"text": "x" * MAX_BODY_BYTES}),
        headers={"Content-Type": "application/json"},
    )
    ERROR_FORMATS[side](Answer.of(answer), 413)
    assert served.get(f"/{side}/notes").json() == before


@pytest.mark.parametrize("side", ["legacy", "v2"])
def test_a_body_that_never_comes_gets_408_in_the_sides_format(served: Served, side: str) -> None:
    head = (
        f"POST /{side}/notes HTTP/1.1\r\nHost: notes.test\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with socket.create_connection((served.host, served.port), timeout=10) as sock:
        sock.sendall(head.encode())
        # The headers and nothing more: the gateway answers once its body deadline passes.
        sock.settimeout(BODY_TIMEOUT_S + WAIT_S)
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = Answer(response.status, response.getheader("content-type", ""), response.read())
    ERROR_FORMATS[side](answer, 408)


def test_a_busy_legacy_pool_gets_503_in_the_legacy_format(served: Served) -> None:
    slow_id = f"slow-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            served.get,
            "/legacy/slow",
            params={"seconds": SLOW_S},
            headers={"X-Request-ID": slow_id},
        )
        # The view logs its line before it sleeps: from then on it holds the only thread.
        wait_for(
            lambda: f"request_id={slow_id}" in served.text(),
            "the slow legacy view's log line",
        )
        busy = served.get("/legacy/notes")
        assert_legacy_fault(Answer.of(busy), 503)
        assert slow.result(timeout=SLOW_S + WAIT_S).status_code == 200
    # Once the thread is free again, legacy answers as before.
    assert served.get("/legacy/notes").status_code == 200


def _request_samples(served: Served) -> list[Sample]:
    """The samples of `gateway_requests_total` on /metrics."""
    answer = served.get("/metrics")
    assert answer.status_code == 200, answer.text
    return [
        sample
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
        if sample.name == "gateway_requests_total"
    ]


def _counted(samples: list[Sample], stack: str, routes: set[str]) -> bool:
    """Whether requests of `stack` were counted under one of `routes`."""
    return any(
        sample.labels.get("stack") == stack
        and sample.labels.get("route") in routes
        and sample.value >= 1
        for sample in samples
    )


def _route_values(samples: list[Sample]) -> set[str]:
    return {sample.labels["route"] for sample in samples}


def _stack_total(samples: list[Sample]) -> float:
    return sum(sample.value for sample in samples if sample.labels.get("stack") in ERROR_FORMATS)


def test_metrics_count_both_stacks_by_route_template(served: Served) -> None:
    legacy_note = _create(served, "legacy", "counted on legacy")
    v2_note = _create(served, "v2", "counted on v2")
    assert served.get(f"/legacy/notes/{legacy_note['id']}").status_code == 200
    assert served.get(f"/v2/notes/{v2_note['id']}").status_code == 200
    samples = _request_samples(served)
    assert _counted(samples, "legacy", LEGACY_NOTE_ROUTES), samples
    assert _counted(samples, "v2", V2_NOTE_ROUTES), samples
    # Routes, never raw paths: no note id appears in a label.
    assert not any(str(legacy_note["id"]) in route for route in _route_values(samples))


def test_unknown_paths_share_one_route_value(served: Served) -> None:
    before = _request_samples(served)
    sides = list(ERROR_FORMATS)
    for n in range(50):
        side = sides[n % 2]
        answer = served.get(f"/{side}/unknown-{uuid.uuid4().hex}")
        ERROR_FORMATS[side](Answer.of(answer), 404)
    after = _request_samples(served)
    added = _route_values(after) - _route_values(before)
    assert len(added) <= 1, added
    assert not any("unknown-" in route for route in _route_values(after))
    assert _stack_total(after) - _stack_total(before) >= 50


def _logger_of(record: dict[str, Any]) -> str:
    """The logger that wrote a JSON log record."""
    return str(record.get("name") or record.get("logger") or record.get("logger_name") or "")


def _mentions(record: dict[str, Any], text: str) -> bool:
    return any(isinstance(value, str) and text in value for value in record.values())


def _app_records(served: Served, logger: str, request_id: str) -> list[dict[str, Any]] | None:
    found = [r for r in served.records() if _logger_of(r) == logger and _mentions(r, request_id)]
    return found or None


def _access_records(served: Served, side: str, request_id: str) -> list[dict[str, Any]] | None:
    """Access-log records of `request_id` that name the stack `side`."""
    found = [
        r
        for r in served.records()
        if "access" in _logger_of(r) and _mentions(r, request_id) and _mentions(r, side)
    ]
    return found or None


@pytest.mark.parametrize(("side", "path"), [("legacy", "/notes"), ("v2", "/lifespan")])
def test_a_given_request_id_reaches_the_apps_logs_and_the_access_log(
    served: Served, side: str, path: str
) -> None:
    answer = served.get(f"/{side}{path}", headers={"X-Request-ID": REQUEST_ID})
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Request-ID"] == REQUEST_ID
    wait_for(lambda: _app_records(served, f"notes.{side}", REQUEST_ID), f"notes.{side}'s record")
    wait_for(lambda: _access_records(served, side, REQUEST_ID), f"the {side} access-log record")


@pytest.mark.parametrize("side", ["legacy", "v2"])
def test_a_request_without_an_id_gets_one(served: Served, side: str) -> None:
    path = "/notes" if side == "legacy" else "/lifespan"
    first, second = (served.get(f"/{side}{path}") for _ in range(2))
    ids = [answer.headers.get("X-Request-ID", "") for answer in (first, second)]
    assert all(WELL_FORMED_ID.fullmatch(request_id) for request_id in ids), ids
    assert ids[0] != ids[1]


def _states(body: Any, name: str) -> list[Any]:
    """Every state reported for the check or component `name`, anywhere in /health's JSON:
    `{name: state}` at any depth, or `{"name": name, ...}` in a list."""
    found: list[Any] = []
    if isinstance(body, dict):
        if body.get("name") == name:
            found.append(body)
        for key, value in body.items():
            if key == name:
                found.append(value)
            found += _states(value, name)
    elif isinstance(body, list):
        for item in body:
            found += _states(item, name)
    return found


def _is_ok(state: Any) -> bool:
    """`"ok"`, `true`, or an object whose `status` is "ok" or whose `ok` is true."""
    if isinstance(state, dict):
        return state.get("status") == "ok" or state.get("ok") is True
    return state == "ok" or state is True


def _check_ok(body: Any, name: str) -> bool:
    states = _states(body, name)
    return bool(states) and all(_is_ok(state) for state in states)


def _check_failed(body: Any, name: str) -> bool:
    return any(not _is_ok(state) for state in _states(body, name))


def _reports_legacy_pool(body: Any) -> bool:
    """Some key names the legacy pool (threads, busy, waiting...)."""
    if isinstance(body, dict):
        return any("pool" in key or _reports_legacy_pool(value) for key, value in body.items())
    if isinstance(body, list):
        return any(_reports_legacy_pool(item) for item in body)
    return False


def _health_once(served: Served, status: int) -> requests.Response | None:
    answer = served.get("/health")
    return answer if answer.status_code == status else None


def test_health_covers_both_stacks_and_the_registered_check(served: Served) -> None:
    healthy = wait_for(lambda: _health_once(served, 200), "/health 200")
    body = healthy.json()
    assert _check_ok(body, "notes"), body
    assert _reports_legacy_pool(body), body
    assert _states(body, "legacy") and _states(body, "v2"), body

    served.down_file.touch()
    try:
        down = wait_for(lambda: _health_once(served, 503), "/health 503 with the notes check down")
        assert _check_failed(down.json(), "notes"), down.json()
    finally:
        served.down_file.unlink(missing_ok=True)
    again = wait_for(lambda: _health_once(served, 200), "/health 200 once the check is up again")
    assert _check_ok(again.json(), "notes"), again.json()
