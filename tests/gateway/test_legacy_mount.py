"""The pitfalls of mounting a Flask app with a2wsgi, each with the fix that handles it."""

from __future__ import annotations

import asyncio
import http.client
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import Flask, Response, jsonify, request
from starlette.applications import Starlette
from starlette.routing import Mount

from gateway.background_server import BackgroundServer
from gateway.legacy_mount import LegacyMount


def _echo_app() -> Flask:
    app = Flask("echo")

    @app.post("/echo")
    def echo() -> Response:
        return jsonify(length=len(request.get_data()), cookies=dict(request.cookies))

    @app.get("/cookies")
    def cookies() -> Response:
        return jsonify(dict(request.cookies))

    @app.get("/where")
    def where() -> Response:
        return jsonify(script_root=request.script_root, path=request.path)

    return app


@pytest.fixture(scope="module")
def mounted() -> Iterator[BackgroundServer]:
    mount = LegacyMount(_echo_app(), workers=4)
    app = Starlette(routes=[Mount("/legacy", mount)])
    with BackgroundServer(app) as server:
        yield server
    mount.shutdown()


def test_a_chunked_body_reaches_flask_whole(mounted: BackgroundServer) -> None:
    chunks = [b"x" * 1000] * 50
    answer = requests.post(f"{mounted.url}/legacy/echo", data=iter(chunks), timeout=10)
    assert answer.status_code == 200
    assert answer.json()["length"] == 50_000


def test_duplicate_cookie_headers_all_reach_flask(mounted: BackgroundServer) -> None:
    conn = http.client.HTTPConnection(mounted.host, mounted.port, timeout=10)
    try:
        conn.putrequest("GET", "/legacy/cookies")
        conn.putheader("Cookie", "session=abc")
        conn.putheader("Cookie", "theme=dark; lang=en")
        conn.endheaders()
        answer = conn.getresponse()
        status, body = answer.status, answer.read()
    finally:
        conn.close()
    assert status == 200
    assert body == b'{"lang":"en","session":"abc","theme":"dark"}\n'


def test_flask_sees_the_mount_as_its_script_root(mounted: BackgroundServer) -> None:
    answer = requests.get(f"{mounted.url}/legacy/where", timeout=10)
    assert answer.json() == {"script_root": "/legacy", "path": "/where"}


# Cancellation: driven at the ASGI level, where a timeout or a vanished client cancels
# the request task while the WSGI thread is still busy with it.


def _streaming_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    if environ["REQUEST_METHOD"] == "POST":
        environ["wsgi.input"].read()  # blocks until the whole body has arrived
    start_response("200 OK", [("Content-Type", "text/plain")])
    for _ in range(200):
        yield b"chunk\n"


def _scope(method: str = "GET") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/stream",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }


async def _complete_request(mount: LegacyMount) -> int:
    received = bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        received.extend(message.get("body", b""))

    await mount(_scope(), receive, send)
    return len(received)


async def _stalled_client(mount: LegacyMount, method: str) -> None:
    """A request whose client stops reading (GET) or stops sending its body (POST)."""
    stalled = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await stalled.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        await stalled.wait()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(mount(_scope(method), receive, send), timeout=0.2)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cancelled_requests_do_not_exhaust_the_pool(method: str) -> None:
    threads_before = set(threading.enumerate())
    mount = LegacyMount(_streaming_app, workers=2)

    async def scenario() -> int:
        for _ in range(10):  # five times the pool size
            await _stalled_client(mount, method)
        return await asyncio.wait_for(_complete_request(mount), timeout=10)

    try:
        assert asyncio.run(scenario()) == 200 * len(b"chunk\n")
    finally:
        mount.shutdown()
    assert set(threading.enumerate()) <= threads_before, "a pool thread outlived the mount"


# The bound on waiting for a pool thread: every path out of the wait gives the slot back.


def _gated_app(gate: threading.Event) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/hold":
            gate.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    return app


async def _status(mount: LegacyMount, path: str) -> int:
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await mount(_scope() | {"path": path}, receive, send)
    return statuses[0]


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not so after {timeout_s} s")


def test_cancelled_and_timed_out_waits_give_their_slot_back_once() -> None:
    gate = threading.Event()
    mount = LegacyMount(_gated_app(gate), workers=2, queue_timeout_s=0.2)

    async def scenario() -> list[int]:
        holders = [asyncio.create_task(_status(mount, "/hold")) for _ in range(2)]
        await _until(lambda: mount.busy == 2)
        # Waiting while both threads are held: one times out, two are cancelled.
        timed_out = await _status(mount, "/quick")
        waiters = [asyncio.create_task(_status(mount, "/quick")) for _ in range(2)]
        await _until(lambda: mount.waiting == 2)
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        gate.set()
        held = await asyncio.gather(*holders)
        # Both slots are free again, and no more than both: two run at once, and a
        # third, with both held anew, still has to wait.
        assert (mount.busy, mount.waiting) == (0, 0)
        gate.clear()
        holders = [asyncio.create_task(_status(mount, "/hold")) for _ in range(2)]
        await _until(lambda: mount.busy == 2)
        third = await _status(mount, "/quick")
        gate.set()
        return [timed_out, *held, third, *await asyncio.gather(*holders)]

    try:
        assert asyncio.run(scenario()) == [503, 200, 200, 503, 200, 200]
    finally:
        gate.set()
        mount.shutdown()
    assert (mount.busy, mount.waiting) == (0, 0)


# How the answer crosses from the pool thread: the head goes with the first body bytes,
# a stream still streams, and an app that fails before its first bytes gets a clean 500.


async def _answer(mount: LegacyMount, on_message: Callable[[dict[str, Any]], None]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        on_message(message)

    await mount(_scope(), receive, send)


def _served(app: Any) -> list[dict[str, Any]]:
    mount = LegacyMount(app, workers=2)
    messages: list[dict[str, Any]] = []
    try:
        asyncio.run(asyncio.wait_for(_answer(mount, messages.append), timeout=10))
    finally:
        mount.shutdown()
    return messages


def test_a_one_chunk_answer_arrives_whole_and_ends_once() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Kind", "one")])
        yield b""  # an empty chunk before the body sends nothing, not even the head
        yield b"hello"

    messages = _served(app)
    assert [message["type"] for message in messages] == [
        "http.response.start",
        "http.response.body",
        "http.response.body",
    ]
    assert messages[0]["status"] == 201
    assert (b"x-kind", b"one") in messages[0]["headers"]
    assert b"".join(message.get("body", b"") for message in messages) == b"hello"
    assert [message.get("more_body", False) for message in messages[1:]] == [True, False]


def test_an_answer_without_body_still_gets_its_head() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("204 No Content", [])
        return []

    messages = _served(app)
    assert messages[0] == {"type": "http.response.start", "status": 204, "headers": []}
    assert messages[-1]["type"] == "http.response.body"
    assert not messages[-1].get("more_body", False)


def test_a_stream_reaches_the_client_before_the_app_has_finished_it() -> None:
    first_chunk_seen = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first"
        # The rest is only produced once the client holds the first chunk: an answer
        # buffered until the app is done would never complete.
        if not first_chunk_seen.wait(10):
            raise AssertionError("the first chunk was held back")
        for _ in range(50):
            yield b"more"

    messages: list[dict[str, Any]] = []

    def record(message: dict[str, Any]) -> None:
        messages.append(message)
        if message.get("body") == b"first":
            first_chunk_seen.set()

    mount = LegacyMount(app, workers=2)
    try:
        asyncio.run(asyncio.wait_for(_answer(mount, record), timeout=10))
    finally:
        mount.shutdown()
    assert b"".join(message.get("body", b"") for message in messages) == b"first" + b"more" * 50


def test_an_app_failing_before_its_first_bytes_leaves_the_answer_unstarted() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise RuntimeError("the body could not be made")
        yield b"never"

    mount = LegacyMount(app, workers=2)
    messages: list[dict[str, Any]] = []
    left: set[asyncio.Task[Any]] = set()

    async def scenario() -> None:
        try:
            async with asyncio.timeout(10):
                await _answer(mount, messages.append)
        finally:
            await asyncio.sleep(0)  # a task cancelled now has ended by the next turn
            left.update(asyncio.all_tasks() - {asyncio.current_task()})

    try:
        with pytest.raises(RuntimeError, match="could not be made"):
            asyncio.run(scenario())
    finally:
        mount.shutdown()
    # Nothing was sent, so the server's error handling can still answer a clean 500.
    assert messages == []
    assert (mount.busy, mount.waiting) == (0, 0)
    # Nor is the request's sender left waiting for messages that will never come.
    assert left == set()


def test_an_error_head_that_replaces_the_first_raises_the_apps_own_error() -> None:
    # PEP 3333: an app that fails after start_response calls it again with exc_info; the
    # head not sent yet is replaced, and the server gets the app's exception to handle.
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise LookupError("the row went away")
        except LookupError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return []

    mount = LegacyMount(app, workers=2)
    try:
        with pytest.raises(LookupError, match="the row went away"):
            asyncio.run(asyncio.wait_for(_answer(mount, lambda _: None), timeout=10))
    finally:
        mount.shutdown()
    assert (mount.busy, mount.waiting) == (0, 0)


def test_a_body_message_without_more_body_is_the_last() -> None:
    # `more_body` may be left out (ASGI: it defaults to False); after the last message a
    # server's receive waits for the client to go, so reading on would hang the request.
    gone = asyncio.Event()
    messages: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(body)).encode()]

    async def scenario(mount: LegacyMount) -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"12345"}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)

        await mount(_scope("POST"), receive, send)

    mount = LegacyMount(app, workers=2)
    try:
        asyncio.run(asyncio.wait_for(scenario(mount), timeout=10))
    finally:
        gone.set()
        mount.shutdown()
    assert b"".join(message.get("body", b"") for message in messages) == b"5"


def test_a_request_the_pool_cannot_take_gives_its_slot_back() -> None:
    # After the pool is shut down (the gateway stopping) a late request fails to be
    # scheduled; its slot must not stay taken, or the mount counts a thread busy for good.
    mount = LegacyMount(_gated_app(threading.Event()), workers=1, queue_timeout_s=0.2)
    mount.shutdown()
    for _ in range(2):
        with pytest.raises(RuntimeError, match="shutdown"):
            asyncio.run(asyncio.wait_for(_status(mount, "/quick"), timeout=10))
    assert (mount.busy, mount.waiting) == (0, 0)


def test_a_websocket_to_the_mount_is_closed_normally() -> None:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    mount = LegacyMount(_gated_app(threading.Event()), workers=1)
    try:
        asyncio.run(mount(_scope() | {"type": "websocket"}, receive, send))
    finally:
        mount.shutdown()
    assert messages == [{"type": "websocket.close", "code": 1000}]


def test_an_error_after_the_head_was_sent_sends_no_second_head() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"part"
        try:
            raise LookupError("the rest went away")
        except LookupError:
            # Too late to replace the head: the server gets the error instead.
            start_response("500 Internal Server Error", [], sys.exc_info())

    mount = LegacyMount(app, workers=2)
    messages: list[dict[str, Any]] = []
    try:
        with pytest.raises(LookupError, match="the rest went away"):
            asyncio.run(asyncio.wait_for(_answer(mount, messages.append), timeout=10))
    finally:
        mount.shutdown()
    starts = [message for message in messages if message["type"] == "http.response.start"]
    assert [start["status"] for start in starts] == [200]


def test_a_stream_longer_than_the_send_queue_reaches_a_slow_client_whole() -> None:
    chunks = [f"{n:04d}".encode() for n in range(20 * LegacyMount.send_queue_size)]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return chunks

    async def scenario(mount: LegacyMount) -> bytes:
        received = bytearray()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            # A client slower than the app: the queue fills, and the thread must wait.
            await asyncio.sleep(0.001)
            received.extend(message.get("body", b""))

        await mount(_scope(), receive, send)
        return bytes(received)

    mount = LegacyMount(app, workers=2)
    try:
        assert asyncio.run(asyncio.wait_for(scenario(mount), timeout=10)) == b"".join(chunks)
    finally:
        mount.shutdown()
