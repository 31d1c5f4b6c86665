"""Slow and greedy clients on a real server: stalled bodies, slow or huge headers, idle
connections, too many connections. Raw sockets, since well-behaved clients cannot misbehave.

Each server here has small deadlines set through its settings, so that the tests are quick.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import pytest
import requests

from gateway.background_server import BackgroundServer
from shop.app import create_app
from shop.settings import ShopSettings
from tests.conftest import make_settings
from tests.support import wait_for

DEADLINE_S = 1.0  # the body, header and keep-alive deadlines of the `limited` server
LEGACY_WORKERS = 2
MAX_HEADER_BYTES = 4096
MARGIN_S = 3.0  # how late past its deadline a close or an answer may come, on a busy machine
QUICK_S = 2.0  # what an answer that waits for nothing may take

STALLED_JSON = b'{"username": "vie'  # the start of a legacy login body, never finished
STALLED_FORM = b"username=vie"  # the start of a v2 login form, never finished
LEGACY_408 = {
    "error": {
        "code": "request_timeout",
        "message": f"request body not received within {DEADLINE_S:g} s",
    }
}
V2_408 = {
    "type": "about:blank",
    "title": "Request Timeout",
    "status": 408,
    "detail": f"request body not received within {DEADLINE_S:g} s",
}


@pytest.fixture(scope="module")
def limited_settings(database_url: str) -> ShopSettings:
    return make_settings(
        database_url,
        legacy_workers=LEGACY_WORKERS,
        legacy_queue_timeout_s=3.0,
        body_timeout_s=DEADLINE_S,
        header_timeout_s=DEADLINE_S,
        keep_alive_timeout_s=DEADLINE_S,
        max_header_bytes=MAX_HEADER_BYTES,
    )


@pytest.fixture(scope="module")
def limited(limited_settings: ShopSettings) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(limited_settings), settings=limited_settings) as server:
        yield server


# Raw HTTP/1.1 over sockets.


def _connect(server: BackgroundServer) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=10)


def _head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway.test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _stalled_post(
    server: BackgroundServer, path: str, body: bytes, *, chunked: bool
) -> socket.socket:
    """A POST that sends the start of its body, then nothing."""
    sock = _connect(server)
    legacy = path.startswith("/legacy")
    content_type = "application/json" if legacy else "application/x-www-form-urlencoded"
    if chunked:
        head = _head("POST", path, f"Content-Type: {content_type}", "Transfer-Encoding: chunked")
        sock.sendall(head + b"%x\r\n%s\r\n" % (len(body), body))
    else:
        head = _head("POST", path, f"Content-Type: {content_type}", "Content-Length: 100")
        sock.sendall(head + body)
    return sock


def _answer(sock: socket.socket, timeout_s: float) -> http.client.HTTPResponse:
    sock.settimeout(timeout_s)
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    return answer


def _closed_after(sock: socket.socket, timeout_s: float) -> float:
    """Seconds until the server closes `sock` (reading and discarding what it sends)."""
    started = time.monotonic()
    sock.settimeout(timeout_s)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the connection was still open after {timeout_s} s")
    return time.monotonic() - started


def _wait_for_requests(server: BackgroundServer, count: int) -> None:
    """Until the server runs `count` requests: their heads have all been read."""
    wait_for(
        lambda: len(server.server.server_state.tasks) >= count,
        "the stalled requests reaching the server",
    )


def _new_connection_served(server: BackgroundServer) -> bool:
    with closing(http.client.HTTPConnection(server.host, server.port, timeout=10)) as new:
        return _get(new, "/v2/health")[0] == 200


def _timed_get(url: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    answer = requests.get(url, timeout=30)
    return answer, time.monotonic() - started


# Stalled request bodies.


def test_stalled_legacy_bodies_hold_no_pool_thread_and_get_408(limited: BackgroundServer) -> None:
    count = 3 * LEGACY_WORKERS
    with ExitStack() as stack:
        stalled = [
            stack.enter_context(
                _stalled_post(limited, "/legacy/auth/token", STALLED_JSON, chunked=False)
            )
            for _ in range(count)
        ]
        sent = time.monotonic()
        _wait_for_requests(limited, count)

        # Every legacy request above waits for its body without a pool thread: reads run.
        for path in ("/legacy/health", "/legacy/products/1"):
            answer, elapsed = _timed_get(limited.url + path)
            assert answer.status_code == 200, answer.text
            assert elapsed < QUICK_S, (path, elapsed)

        for sock in stalled:
            answer = _answer(sock, DEADLINE_S + MARGIN_S)
            assert answer.status == 408
            assert answer.getheader("Content-Type") == "application/json"
            assert answer.getheader("Connection") == "close"
            assert answer.read() == _json(LEGACY_408)
        waited = time.monotonic() - sent
        assert DEADLINE_S * 0.9 <= waited < DEADLINE_S + MARGIN_S, waited


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/legacy/auth/token", STALLED_JSON, ("application/json", LEGACY_408)),
        ("/v2/auth/token", STALLED_FORM, ("application/problem+json", V2_408)),
    ],
    ids=["legacy", "v2"],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_stalled_body_gets_408_in_the_stack_format(
    limited: BackgroundServer,
    path: str,
    body: bytes,
    expected: tuple[str, dict[str, object]],
    chunked: bool,
) -> None:
    content_type, error = expected
    with _stalled_post(limited, path, body, chunked=chunked) as sock:
        sent = time.monotonic()
        answer = _answer(sock, DEADLINE_S + MARGIN_S)
        waited = time.monotonic() - sent
        assert answer.status == 408
        assert answer.getheader("Content-Type") == content_type
        assert answer.read() == _json(error)
        assert DEADLINE_S * 0.9 <= waited < DEADLINE_S + MARGIN_S, waited
        assert _closed_after(sock, MARGIN_S) < MARGIN_S


def test_a_body_that_arrives_in_pieces_within_the_deadline_reaches_flask_whole(
    limited: BackgroundServer,
) -> None:
    body = b'{"username": "viewer", "remember": true}'
    head = _head(
        "POST",
        "/legacy/auth/token",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
    )
    with _connect(limited) as sock:
        sock.sendall(head)
        for piece in (body[:10], body[10:20], body[20:]):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        answer = _answer(sock, 10)
        # Flask parsed the whole JSON object (a cut one is malformed): one field is missing.
        assert answer.status == 400
        assert json.loads(answer.read())["error"]["fields"] == {
            "password": ["Missing data for required field."]
        }


# Request heads: size and deadline.


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/legacy/health", "application/json"), ("/v2/health", "application/problem+json")],
)
def test_a_head_over_the_limit_gets_431(
    limited: BackgroundServer, path: str, content_type: str
) -> None:
    with _connect(limited) as sock:
        sock.sendall(_head("GET", path, "X-Padding: " + "a" * 2 * MAX_HEADER_BYTES))
        answer = _answer(sock, 10)
        assert answer.status == 431
        assert answer.getheader("Content-Type") == content_type
        message = f"request headers larger than {MAX_HEADER_BYTES} bytes"
        expected: dict[str, object] = (
            {"error": {"code": "header_fields_too_large", "message": message}}
            if path.startswith("/legacy")
            else {
                "type": "about:blank",
                "title": "Request Header Fields Too Large",
                "status": 431,
                "detail": message,
            }
        )
        assert answer.read() == _json(expected)
        assert _closed_after(sock, MARGIN_S) < MARGIN_S
    # A head under the limit is served as usual.
    headers = {"X-Padding": "a" * (MAX_HEADER_BYTES // 2)}
    assert requests.get(limited.url + path, headers=headers, timeout=10).status_code == 200


def test_a_body_larger_than_the_head_limit_is_not_taken_for_a_head(
    limited: BackgroundServer,
) -> None:
    """The head and a big body arrive in the same reads: only the head counts."""
    body = {"sku": "PAD", "name": "a" * 4 * MAX_HEADER_BYTES, "price": "1.00", "stock": 1}
    answer = requests.post(f"{limited.url}/v2/products", json=body, timeout=10)
    assert answer.status_code == 401, answer.text


def test_a_head_still_growing_past_the_limit_is_refused_before_it_ends(
    limited: BackgroundServer,
) -> None:
    """The server stops reading a head at the limit: it does not buffer what follows."""
    with _connect(limited) as sock:
        sock.sendall(b"GET /legacy/health HTTP/1.1\r\nX-Padding: " + b"a" * 2 * MAX_HEADER_BYTES)
        started = time.monotonic()
        answer = _answer(sock, DEADLINE_S + MARGIN_S)
        assert answer.status == 431
        assert answer.getheader("Content-Type") == "application/json"
        assert answer.read() == _json(
            {
                "error": {
                    "code": "header_fields_too_large",
                    "message": f"request headers larger than {MAX_HEADER_BYTES} bytes",
                }
            }
        )
        # Refused for its size, not closed at the header deadline.
        assert time.monotonic() - started < DEADLINE_S
        assert _closed_after(sock, MARGIN_S) < MARGIN_S


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(
    limited: BackgroundServer,
) -> None:
    with _connect(limited) as sock:
        waited = _closed_after(sock, DEADLINE_S + MARGIN_S)
    assert DEADLINE_S * 0.9 <= waited < DEADLINE_S + MARGIN_S, waited


def test_a_head_sent_slowly_is_closed_at_the_header_deadline(limited: BackgroundServer) -> None:
    """Trickling bytes does not extend the deadline: it bounds the whole head."""
    with _connect(limited) as sock:
        sock.sendall(b"GET /v2/health HTTP/1.1\r\nHost: gateway.test\r\n")
        started = time.monotonic()
        sock.settimeout(0.1)
        closed = False
        while not closed and time.monotonic() - started < DEADLINE_S + MARGIN_S:
            try:
                sock.sendall(b"X: y\r\n")
                closed = sock.recv(65536) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        waited = time.monotonic() - started
    assert closed, "the connection was still open after the deadline"
    assert DEADLINE_S * 0.9 <= waited < DEADLINE_S + MARGIN_S, waited


def test_an_unfinished_head_after_a_request_is_closed_at_the_header_deadline(
    limited: BackgroundServer,
) -> None:
    """On a keep-alive connection, the deadline starts again with the next request's head."""
    with _connect(limited) as sock:
        sock.sendall(_head("GET", "/v2/health"))
        answer = _answer(sock, 10)
        assert answer.status == 200
        answer.read()
        sock.sendall(b"GET /v2/health HTTP/1.1\r\n")
        waited = _closed_after(sock, DEADLINE_S + MARGIN_S)
    assert DEADLINE_S * 0.9 <= waited < DEADLINE_S + MARGIN_S, waited


def test_an_idle_keep_alive_connection_is_closed_after_its_bound(
    limited: BackgroundServer,
) -> None:
    with _connect(limited) as sock:
        sock.sendall(_head("GET", "/legacy/health"))
        answer = _answer(sock, 10)
        assert answer.status == 200
        assert answer.getheader("Connection") is None  # kept alive
        answer.read()
        waited = _closed_after(sock, DEADLINE_S + MARGIN_S)
    assert DEADLINE_S * 0.9 <= waited < DEADLINE_S + MARGIN_S, waited


# The connection cap.

MAX_CONNECTIONS = 3


@pytest.fixture(scope="module")
def capped(database_url: str) -> Iterator[BackgroundServer]:
    settings = make_settings(database_url, max_connections=MAX_CONNECTIONS)
    with BackgroundServer(create_app(settings), settings=settings) as server:
        yield server


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn.request("GET", path)
    answer = conn.getresponse()
    return answer.status, answer.headers, answer.read()


def test_connections_past_the_cap_get_503_while_open_ones_are_served(
    capped: BackgroundServer,
) -> None:
    with ExitStack() as stack:
        open_ones = []
        for _ in range(MAX_CONNECTIONS):
            conn = http.client.HTTPConnection(capped.host, capped.port, timeout=10)
            stack.callback(conn.close)
            assert _get(conn, "/v2/health")[0] == 200
            open_ones.append(conn)

        message = "too many connections; try again shortly"
        legacy_503 = {"error": {"code": "service_unavailable", "message": message}}
        v2_503 = {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": message,
        }
        for path, content_type, error in [
            ("/legacy/health", "application/json", legacy_503),
            ("/v2/health", "application/problem+json", v2_503),
        ]:
            extra = http.client.HTTPConnection(capped.host, capped.port, timeout=10)
            stack.callback(extra.close)
            status, headers, body = _get(extra, path)
            assert (status, headers["Content-Type"]) == (503, content_type), body
            assert body == _json(error)
            assert headers["Retry-After"] == "1"
            assert headers["Connection"] == "close"

        # The connections already open are served as before.
        assert all(_get(conn, "/legacy/health")[0] == 200 for conn in open_ones)

        # Once one closes, a new connection is served again.
        open_ones.pop().close()
        wait_for(lambda: _new_connection_served(capped), "a closed connection's place freed")


# `gateway serve --workers N`: the limits reach every worker process.


def test_worker_processes_enforce_the_limits(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_HEADER_TIMEOUT_S": str(DEADLINE_S),
        "GATEWAY_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        # Any URL: no stub is started, and the health routes do not call the carrier.
        "GATEWAY_CARRIER_URL": "http://127.0.0.1:9",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_MIGRATE_ON_START": "false",
        "GATEWAY_SEED_ON_START": "false",
    }
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert process.poll() is None, "the gateway exited"
            return _answers(url + "/v2/health")

        wait_for(up, "the gateway's start", timeout_s=60)
        headers = {"X-Padding": "a" * 2 * MAX_HEADER_BYTES}
        assert requests.get(url + "/v2/health", headers=headers, timeout=10).status_code == 431
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            waited = _closed_after(sock, DEADLINE_S + MARGIN_S)
        assert DEADLINE_S * 0.9 <= waited < DEADLINE_S + MARGIN_S, waited
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _json(value: object) -> bytes:
    """An error body as the gateway writes it."""
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("body_timeout_s", 0),
        ("header_timeout_s", 0),
        ("keep_alive_timeout_s", 301),
        ("max_header_bytes", 100),
        ("max_connections", 0),
    ],
)
def test_limits_out_of_their_bounds_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        ShopSettings(**{name: value})
