"""Request ids, metrics and access logs, on a toy Flask/FastAPI pair served for real."""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import random
import string
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from gateway.background_server import BackgroundServer
from gateway.observability.logs import access_log, log_handler
from gateway.observability.request_id import RequestIdFilter
from gateway.observability.routes import normalise_werkzeug_rule
from tests.gateway.observed_pair import MAX_BODY_BYTES, Pair
from tests.support import wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
HEX_ID = string.hexdigits.lower()


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    served = Pair()
    yield served
    served.close()


@pytest.fixture(scope="module")
def server(pair: Pair) -> Iterator[BackgroundServer]:
    with BackgroundServer(pair.app) as running:
        yield running


def scrape(url: str) -> Samples:
    answer = requests.get(f"{url}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_total(samples: Samples, stack: str, route: str, status: str = "200") -> float:
    labels = {"stack": stack, "served_by": stack, "method": "GET", "route": route}
    return value(samples, "gateway_requests_total", **labels, status=status)


def label_values(samples: Samples, name: str, label: str, **where: str) -> set[str]:
    return {
        dict(labels)[label]
        for (sample, labels), _ in samples.items()
        if sample == name and set(where.items()) <= labels
    }


# Metrics


def test_requests_are_counted_by_route_template_on_both_stacks(server: BackgroundServer) -> None:
    before = scrape(server.url)
    for item in (1, 2, 3):
        assert requests.get(f"{server.url}/legacy/items/{item}", timeout=10).status_code == 200
    assert requests.get(f"{server.url}/v2/items/9", timeout=10).status_code == 200
    assert requests.get(f"{server.url}/v2/items/not-a-number", timeout=10).status_code == 422
    after = scrape(server.url)

    def grew(stack: str, route: str, status: str = "200") -> float:
        return requests_total(after, stack, route, status) - requests_total(
            before, stack, route, status
        )

    # Flask's `/items/<int:item_id>` is written the FastAPI way: one name on both stacks.
    assert grew("legacy", "/items/{item_id}") == 3
    assert grew("v2", "/items/{item_id}") == 1
    assert grew("v2", "/items/{item_id}", "422") == 1
    assert grew("gateway", "/metrics") == 1  # the scrape before
    duration = {"stack": "v2", "served_by": "v2", "method": "GET", "route": "/items/{item_id}"}
    assert value(after, "gateway_request_duration_seconds_count", **duration) >= 2
    assert value(after, "gateway_request_duration_seconds_bucket", **duration, le="+Inf") >= 2
    # The pool's gauges and the refusals are there before anything is refused.
    assert ("gateway_legacy_pool_threads_busy", frozenset()) in after
    assert ("gateway_legacy_pool_requests_waiting", frozenset()) in after
    assert value(after, "gateway_legacy_requests_rejected_total", reason="queue_timeout") == 0
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    assert "# TYPE gateway_shadow_comparisons_total counter" in text
    routes = label_values(after, "gateway_requests_total", "route", stack="legacy")
    assert not any(route.isdigit() or "/items/1" in route for route in routes)


def test_a_thousand_random_paths_make_one_route_value(server: BackgroundServer) -> None:
    rng = random.Random(8)
    prefixes = ["/legacy/", "/v2/", "/"]
    with requests.Session() as http:
        for n in range(1000):
            junk = "".join(rng.choices(string.ascii_letters + string.digits, k=12))
            path = f"{prefixes[n % 3]}{junk}/{n}?q={junk}"
            assert http.get(server.url + path, timeout=10).status_code == 404
        # A method outside the standard ones joins the shared series too.
        assert http.request("PROPFIND", f"{server.url}/v2/dav", timeout=10).status_code == 404
    samples = scrape(server.url)
    for stack in ("legacy", "v2", "gateway"):
        assert label_values(
            samples, "gateway_requests_total", "route", stack=stack, status="404"
        ) == {"<unmatched>"}
    assert label_values(samples, "gateway_requests_total", "method") <= {"GET", "OTHER"}
    assert label_values(samples, "gateway_requests_total", "route", stack="gateway") <= {
        "<unmatched>",
        "/metrics",
    }


def test_the_pool_is_observed_busy_waiting_and_refusing() -> None:
    pair = Pair(workers=1, queue_timeout_s=0.5)
    try:
        with BackgroundServer(pair.app) as server, ThreadPoolExecutor(2) as clients:
            holding = clients.submit(requests.get, f"{server.url}/legacy/wait", timeout=30)
            assert pair.gate.entered.acquire(timeout=10)
            waiting = clients.submit(requests.get, f"{server.url}/legacy/items/1", timeout=30)
            wait_for(
                lambda: value(scrape(server.url), "gateway_legacy_pool_requests_waiting") == 1,
                "one request waiting",
            )
            samples = scrape(server.url)
            assert value(samples, "gateway_legacy_pool_threads_busy") == 1
            refused = waiting.result()
            assert refused.status_code == 503
            assert len(refused.headers["x-request-id"]) == 32
            pair.gate.open.set()
            assert holding.result().status_code == 200
            # The thread is given back just after the answer is out.
            wait_for(
                lambda: value(scrape(server.url), "gateway_legacy_pool_threads_busy") == 0,
                "no thread busy",
            )
            samples = scrape(server.url)
            assert value(samples, "gateway_legacy_pool_requests_waiting") == 0
            assert (
                value(samples, "gateway_legacy_requests_rejected_total", reason="queue_timeout")
                == 1
            )
            assert requests_total(samples, "legacy", "<unmatched>", "503") == 1
            assert requests_total(samples, "legacy", "/wait") == 1
    finally:
        pair.close()


def test_metrics_on_a_port_of_their_own_or_off() -> None:
    separate = Pair(metrics_path=None)
    off = Pair(metrics_enabled=False)
    try:
        exposition = separate.observability.exposition
        assert exposition is not None
        with (
            BackgroundServer(separate.app) as server,
            BackgroundServer(exposition.app()) as metrics_server,
        ):
            assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 404
            assert requests.get(f"{server.url}/v2/items/4", timeout=10).status_code == 200
            samples = scrape(metrics_server.url)
            assert requests_total(samples, "v2", "/items/{item_id}") == 1
            assert requests_total(samples, "gateway", "<unmatched>", "404") == 1
        with BackgroundServer(off.app) as server:
            assert off.observability.exposition is None
            answer = requests.get(f"{server.url}/metrics", timeout=10)
            assert answer.status_code == 404
            assert len(answer.headers["x-request-id"]) == 32
    finally:
        separate.close()
        off.close()


def test_an_apps_own_metrics_are_shown_beside_the_gateways() -> None:
    registry = CollectorRegistry()
    things = Counter("toy_things", "Things the toy v2 app did.", ["kind"], registry=registry)
    things.labels("made").inc(3)
    pair = Pair(more_metrics=[registry])
    try:
        with BackgroundServer(pair.app) as server:
            assert requests.get(f"{server.url}/v2/items/1", timeout=10).status_code == 200
            samples = scrape(server.url)
    finally:
        pair.close()
    assert value(samples, "toy_things_total", kind="made") == 3
    assert requests_total(samples, "v2", "/items/{item_id}") == 1


def test_worker_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two processes write to one directory, as `--workers 2` does; a scrape sums both."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.gateway.observed_pair", str(tmp_path), legacy, v2],
            env=env,
        )
        for legacy, v2 in (("2", "3"), ("1", "4"))
    ]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    pair = Pair(metrics_path=None, multiprocess_dir=tmp_path)
    try:
        exposition = pair.observability.exposition
        assert exposition is not None
        body, _ = exposition.render(None)
    finally:
        pair.close()
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    assert requests_total(samples, "legacy", "/items/{item_id}") == 3
    assert requests_total(samples, "v2", "/items/{item_id}") == 7
    # Both workers stopped cleanly: their pools count no longer.
    assert not list(tmp_path.glob("gauge_livesum_*.db"))
    assert value(samples, "gateway_legacy_pool_threads_busy") == 0


# Request ids


def test_a_well_formed_request_id_is_kept_and_seen_by_both_apps(
    server: BackgroundServer,
) -> None:
    given = "client-7.retry:2_A"
    legacy = requests.get(
        f"{server.url}/legacy/items/1", headers={"X-Request-ID": given}, timeout=10
    )
    v2 = requests.get(f"{server.url}/v2/items/1", headers={"X-Request-ID": given}, timeout=10)
    assert legacy.headers["x-request-id"] == v2.headers["x-request-id"] == given
    assert legacy.json() == {"id": 1, "header_id": given, "environ_id": given}
    assert v2.json() == {"id": 1, "header_id": given, "state_id": given}


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("X-Request-ID", "")],
        [("X-Request-ID", "has spaces")],
        [("X-Request-ID", "x" * 129)],
        [("X-Request-ID", 'quote"and\\slash')],
        [("X-Request-ID", "one"), ("X-Request-ID", "two")],
    ],
    ids=["missing", "empty", "spaces", "too-long", "quotes", "twice"],
)
def test_a_missing_or_malformed_request_id_is_replaced(
    server: BackgroundServer, headers: list[tuple[str, str]]
) -> None:
    for path, seen_key in (("/legacy/items/5", "environ_id"), ("/v2/items/5", "state_id")):
        answer_headers, body = _get_with_raw_headers(server, path, headers)
        (request_id,) = answer_headers
        assert len(request_id) == 32 and set(request_id) <= set(HEX_ID)
        assert body["header_id"] == body[seen_key] == request_id


def _get_with_raw_headers(
    server: BackgroundServer, path: str, headers: list[tuple[str, str]]
) -> tuple[list[str], dict[str, Any]]:
    """The answer's X-Request-ID values and JSON body; the headers are sent as given
    (requests would fold a repeated header into one)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.putrequest("GET", path)
        for name, header_value in headers:
            conn.putheader(name, header_value)
        conn.endheaders()
        answer = conn.getresponse()
        assert answer.status == 200
        return answer.headers.get_all("x-request-id") or [], json.loads(answer.read())
    finally:
        conn.close()


def test_the_gateways_own_answers_carry_a_request_id(server: BackgroundServer) -> None:
    too_big = requests.post(
        f"{server.url}/legacy/items/1",
        data=b"x" * (MAX_BODY_BYTES + 1),
        headers={"X-Request-ID": "big-1"},
        timeout=10,
    )
    assert too_big.status_code == 413
    assert too_big.headers["x-request-id"] == "big-1"
    not_found = requests.get(f"{server.url}/nowhere", headers={"X-Request-ID": "nf"}, timeout=10)
    assert (not_found.status_code, not_found.headers["x-request-id"]) == (404, "nf")
    failed = requests.get(f"{server.url}/v2/boom", headers={"X-Request-ID": "boom"}, timeout=10)
    assert (failed.status_code, failed.headers["x-request-id"]) == (500, "boom")
    own_failure = requests.get(f"{server.url}/boom", headers={"X-Request-ID": "own"}, timeout=10)
    assert (own_failure.status_code, own_failure.headers["x-request-id"]) == (500, "own")
    samples = scrape(server.url)
    assert requests_total(samples, "v2", "/boom", "500") >= 1
    assert requests_total(samples, "gateway", "/boom", "500") >= 1


# Logs


@pytest.fixture
def request_id_on_records(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """pytest's capture handler, stamping records the way the gateway's handler does."""
    request_filter = RequestIdFilter()
    caplog.handler.addFilter(request_filter)
    caplog.set_level(logging.INFO)
    yield caplog
    caplog.handler.removeFilter(request_filter)


def test_every_log_record_of_a_request_carries_its_id_on_both_stacks(
    server: BackgroundServer, request_id_on_records: pytest.LogCaptureFixture
) -> None:
    for stack in ("legacy", "v2"):
        given = f"logged-{stack}"
        answer = requests.get(
            f"{server.url}/{stack}/items/3", headers={"X-Request-ID": given}, timeout=10
        )
        assert answer.status_code == 200

        def records(request_id: str = given) -> list[logging.LogRecord]:
            return [r for r in request_id_on_records.records if r.request_id == request_id]

        # The app's own record (Flask's from a pool thread) and the access-log line.
        assert {r.name for r in records()} == {f"toy.{stack}", "gateway.access"}
        app_record = next(r for r in records() if r.name == f"toy.{stack}")
        assert app_record.getMessage() == f"{stack} item 3"


def test_the_servers_record_of_a_failure_carries_the_request_id(server: BackgroundServer) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.addFilter(RequestIdFilter())
    handler.emit = records.append  # type: ignore[method-assign]
    # uvicorn's loggers do not propagate to the root: listen where it logs failures.
    server_log = logging.getLogger("uvicorn.error")
    server_log.addHandler(handler)
    try:
        answer = requests.get(f"{server.url}/boom", headers={"X-Request-ID": "trace"}, timeout=10)
        assert answer.status_code == 500
        wait_for(lambda: any(r.levelno == logging.ERROR for r in records), "the error record")
    finally:
        server_log.removeHandler(handler)
    (failure,) = [r for r in records if r.levelno == logging.ERROR]
    assert failure.exc_info is not None
    assert failure.request_id == "trace"


SECRETS = ("s3cret-token", "hunter2", "Bearer")


@pytest.fixture
def access_lines() -> Iterator[Callable[[str], io.StringIO]]:
    """Attach a gateway log handler in a given format to the access log; yields its output."""
    attached: list[logging.Handler] = []
    level = access_log.level

    def attach(log_format: str) -> io.StringIO:
        out = io.StringIO()
        handler = log_handler(log_format, out)  # type: ignore[arg-type]
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        attached.append(handler)
        return out

    yield attach
    for handler in attached:
        access_log.removeHandler(handler)
    access_log.setLevel(level)


def _secret_request(server: BackgroundServer, path: str, request_id: str) -> None:
    answer = requests.get(
        f"{server.url}{path}?token=s3cret-token&password=hunter2",
        headers={"X-Request-ID": request_id, "Authorization": "Bearer s3cret-token"},
        timeout=10,
    )
    assert answer.status_code == 200


def test_access_log_json_has_one_line_per_request_and_no_secret(
    server: BackgroundServer, access_lines: Callable[[str], io.StringIO]
) -> None:
    out = access_lines("json")
    _secret_request(server, "/legacy/items/8675309", "json-legacy")
    _secret_request(server, "/v2/items/8675310", "json-v2")
    lines = out.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["request_id"] for r in records] == ["json-legacy", "json-v2"]
    for record, stack in zip(records, ("legacy", "v2"), strict=True):
        assert record["name"] == "gateway.access"
        assert record["timestamp"].endswith("+00:00")
        assert (record["stack"], record["served_by"]) == (stack, stack)
        assert (record["method"], record["route"], record["status"]) == (
            "GET",
            "/items/{item_id}",
            200,
        )
        assert record["client"] == "127.0.0.1"
        assert 0 < record["duration_ms"] < 10_000
    text = out.getvalue()
    assert not any(secret in text for secret in SECRETS)
    assert "8675309" not in text and "8675310" not in text  # no raw path, no id


def test_access_log_text_has_one_readable_line_per_request_and_no_secret(
    server: BackgroundServer, access_lines: Callable[[str], io.StringIO]
) -> None:
    out = access_lines("text")
    _secret_request(server, "/legacy/items/8675309", "text-legacy")
    (line,) = out.getvalue().splitlines()
    assert " INFO gateway.access [text-legacy] 127.0.0.1 legacy GET /items/{item_id} 200 " in line
    assert line.endswith("ms served_by=legacy")
    assert not any(secret in line for secret in SECRETS)


@pytest.mark.parametrize(
    ("rule", "template"),
    [
        ("/products/<int:id>", "/products/{id}"),
        ("/items/<item_id>", "/items/{item_id}"),
        ("/files/<path:name>", "/files/{name}"),
        ("/<any(a, b):kind>/<float:x>/raw", "/{kind}/{x}/raw"),
        ("/health", "/health"),
    ],
)
def test_werkzeug_rules_are_written_as_fastapi_templates(rule: str, template: str) -> None:
    assert normalise_werkzeug_rule(rule) == template
