"""The legacy thread pool under stress, on a real server: saturated, and abandoned by clients.

The pool threads are held by shipping quotes to a carrier that answers only when the
test says so (`GatedCarrier`): a blocking call, as legacy Flask apps make them.
"""

from __future__ import annotations

import gc
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, cast

import pytest
import requests
from fastapi import FastAPI
from flask import Flask
from sqlalchemy import Engine, text
from sqlalchemy.pool import QueuePool
from starlette.routing import Mount

from gateway.app import create_gateway
from gateway.background_server import BackgroundServer
from gateway.ledger.dispatch import LedgerDispatch
from gateway.legacy_mount import LegacyMount
from gateway.pair import AppPair
from legacy_flask.db import get_engine
from shop.app import create_app
from shop_core.database import is_sqlite
from tests.carriers import GatedCarrier
from tests.conftest import make_settings
from tests.support import Stack, wait_for

QUEUE_TIMEOUT_S = 0.5
MARGIN_S = 0.5
QUICK_S = 1.0  # what an answer from an idle stack may take


class Served:
    """A gateway of its own, with a gated carrier and a handle on its legacy mount."""

    def __init__(
        self, app: FastAPI, server: BackgroundServer, carrier: GatedCarrier, tokens: dict[str, str]
    ) -> None:
        self.server = server
        self.carrier = carrier
        self.legacy = Stack("legacy", server.url, tokens)
        self.v2 = Stack("v2", server.url, tokens)
        self.mount = legacy_mount(app)

    def health(self) -> requests.Response:
        return requests.get(f"{self.server.url}/health", timeout=10)

    def quote(self, order_id: int) -> Callable[[], requests.Response]:
        return lambda: self.legacy.get(
            "/shipping/quote", params={"order_id": order_id}, user="viewer"
        )


@contextmanager
def _served(database_url: str, tokens: dict[str, str], **overrides: Any) -> Iterator[Served]:
    carrier = GatedCarrier()
    with BackgroundServer(carrier, lifespan="off") as carrier_server:
        settings = make_settings(
            database_url, carrier_url=carrier_server.url, carrier_timeout_s=30, **overrides
        )
        app = create_app(settings)
        with BackgroundServer(app) as server:
            served = Served(app, server, carrier, tokens)
            try:
                yield served
            finally:
                carrier.open_gate()  # let held requests finish, so that the server can stop


def legacy_mount(app: FastAPI) -> LegacyMount:
    mounts = [route for route in app.routes if isinstance(route, Mount)]
    dispatch = next(route.app for route in mounts if route.path == "/legacy")
    # Behind the route ledger's dispatch, which serves the routes that are not cut over with it.
    assert isinstance(dispatch, LedgerDispatch)
    assert isinstance(dispatch.legacy, LegacyMount)
    return dispatch.legacy


def _order_id(served: Served, unique: str) -> int:
    product = served.v2.create_product(unique)
    customer = served.v2.create_customer(unique)
    answer = served.v2.place_order(customer["id"], (product["id"], 1))
    assert answer.status_code == 201, answer.text
    order_id: int = answer.json()["id"]
    return order_id


def _timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def test_a_saturated_pool_answers_503_in_time_while_v2_and_health_answer(
    database_url: str, tokens: dict[str, str], unique: str
) -> None:
    settings = {"legacy_workers": 2, "legacy_queue_timeout_s": QUEUE_TIMEOUT_S}
    with _served(database_url, tokens, **settings) as served, ThreadPoolExecutor(2) as pool:
        order_id = _order_id(served, unique)
        held = [pool.submit(served.quote(order_id)) for _ in range(2)]
        assert served.carrier.wait_for_arrivals(2), "the quotes never reached the carrier"

        # Both pool threads wait on the carrier: a third legacy request cannot run.
        busy, elapsed = _timed(lambda: served.legacy.get("/products/1"))
        assert busy.status_code == 503, busy.text
        assert busy.json() == {
            "error": {
                "code": "service_unavailable",
                "message": "The legacy service is busy; try again shortly.",
            }
        }
        assert busy.headers["Content-Type"] == "application/json"
        assert int(busy.headers["Retry-After"]) >= 1
        # Busy is no reason to drop the client's connection: it may try again on it.
        assert busy.headers.get("Connection") != "close"
        assert QUEUE_TIMEOUT_S <= elapsed < QUEUE_TIMEOUT_S + MARGIN_S, elapsed

        # The other stack and the health check do not wait for the legacy pool.
        for call in (lambda: served.v2.get("/products/1"), served.health):
            answer, elapsed = _timed(call)
            assert answer.status_code == 200, answer.text
            assert elapsed < QUICK_S, elapsed

        served.carrier.open_gate()
        assert [future.result().status_code for future in held] == [200, 200]
        assert served.legacy.get("/products/1").status_code == 200
    assert served.mount.busy == 0


def test_a_request_waits_for_a_free_thread_within_the_bound(
    database_url: str, tokens: dict[str, str], unique: str
) -> None:
    settings = {"legacy_workers": 1, "legacy_queue_timeout_s": 20.0}
    with _served(database_url, tokens, **settings) as served, ThreadPoolExecutor(2) as pool:
        order_id = _order_id(served, unique)
        held = pool.submit(served.quote(order_id))
        assert served.carrier.wait_for_arrivals(1)
        waiting = pool.submit(lambda: served.legacy.get("/products/1"))
        deadline = time.monotonic() + 10
        while served.mount.waiting < 1:
            assert time.monotonic() < deadline, "the request never queued"
            threading.Event().wait(0.01)
        served.carrier.open_gate()
        assert held.result().status_code == 200
        assert waiting.result().status_code == 200


def _abandon(served: Served, request: bytes, *, reset: bool) -> None:
    """Send `request` on a new connection and go away: a FIN, or a RST when `reset`."""
    with socket.create_connection((served.server.host, served.server.port), timeout=5) as sock:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(request)


def _request(method: str, target: str, token: str, body: bytes = b"", length: int = 0) -> bytes:
    head = (
        f"{method} {'/legacy'}{target} HTTP/1.1\r\nHost: gateway\r\n"
        f"Authorization: Bearer {token}\r\n"
    )
    if length:
        head += f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
    return (head + "\r\n").encode() + body


def _idle_in_transaction(db: Engine) -> int:
    if is_sqlite(db.url):
        return 0
    with db.connect() as conn:
        count = conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
            )
        )
    return int(count or 0)


def test_abandoned_legacy_requests_leave_no_stuck_thread_and_no_leaked_connection(
    database_url: str, db: Engine, tokens: dict[str, str], unique: str
) -> None:
    with _served(database_url, tokens, legacy_queue_timeout_s=5.0) as served:
        order_id = _order_id(served, unique)
        connections = get_engine(cast(Flask, served.mount.wsgi_app)).pool
        assert isinstance(connections, QueuePool)
        token = tokens["clerk"]
        # 40 orders whose body stops a tenth of the way (the view is reading it).
        partial = _request("POST", "/orders", token, b'{"customer_id": 1, "items": [', 1000)
        for index in range(40):
            _abandon(served, partial, reset=index % 2 == 1)
        # 30 quotes: the first ten hold every pool thread on the carrier, the rest queue;
        # all their clients are gone before the carrier answers.
        quote = _request("GET", f"/shipping/quote?order_id={order_id}", token)
        for index in range(30):
            _abandon(served, quote, reset=index % 2 == 1)
        assert served.carrier.wait_for_arrivals(served.mount.workers)
        served.carrier.open_gate()
        # 30 complete reads, left before their answer.
        listing = _request("GET", "/orders?per_page=100", token)
        for index in range(30):
            _abandon(served, listing, reset=index % 2 == 1)

        deadline = time.monotonic() + 15
        while served.mount.busy or served.mount.waiting or connections.checkedout():
            assert time.monotonic() < deadline, (
                f"busy {served.mount.busy}, waiting {served.mount.waiting}, "
                f"connections checked out {connections.checkedout()}"
            )
            threading.Event().wait(0.02)
        assert served.mount.executor._work_queue.qsize() == 0
        assert _idle_in_transaction(db) == 0

        # Every pool thread is free: as many requests as threads, at once, all answered.
        with ThreadPoolExecutor(served.mount.workers) as pool:
            answers = list(
                pool.map(
                    lambda _: requests.get(
                        f"{served.legacy.url}/shipping/quote",
                        params={"order_id": order_id},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=10,
                    ),
                    range(served.mount.workers),
                )
            )
        assert [answer.status_code for answer in answers] == [200] * served.mount.workers
        assert connections.checkedout() == 0


# The test above cannot tell whether the mount lets go of an abandoned request: on a real
# server no client makes a pool thread wait for the ASGI side. Bodies are read whole before
# the mount (gateway/body_limit.py), so a thread never waits for one; the shop's answers
# are one chunk, which crosses without waiting; and when a client goes away, uvicorn's
# `send` returns at once, so the queue drains and the thread ends by itself. A request is
# cancelled, with its thread still waiting, only at shutdown: uvicorn cancels what still
# runs once its graceful timeout is over. That is this test's case.

# An answer far larger than every buffer between the pool thread and a client that reads
# nothing: the socket's, uvicorn's, the mount's send queue.
CHUNK = b"x" * 65_536
CHUNKS = 100_000


class _EndlessAnswer:
    """A WSGI app whose answer streams for as long as somebody takes it."""

    def __init__(self) -> None:
        self.sent = 0
        self.closed = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        try:
            for _ in range(CHUNKS):
                self.sent += 1
                yield CHUNK
        finally:
            self.closed.set()


# uvicorn leaves open the connection of a request it cancelled at shutdown (the process is
# about to end): its transport is reclaimed with a ResourceWarning, in the server's thread.
@pytest.mark.filterwarnings("ignore:unclosed resource <TCPTransport:ResourceWarning")
def test_a_thread_streaming_to_a_client_that_stopped_reading_is_freed_at_shutdown() -> None:
    """The client stays connected and reads nothing: the pool thread fills the send queue
    and waits for room. Stopping the server cancels the request; the mount must then free
    the thread, or it waits for good, and so does the gateway's shutdown, which waits for
    the pool's threads (`LegacyMount.shutdown`)."""
    answer = _EndlessAnswer()
    settings = make_settings("sqlite://")
    gateway = create_gateway(settings, AppPair(legacy=answer))
    server = BackgroundServer(gateway, settings=settings, timeout_graceful_shutdown=0.2)
    server.start()
    client = socket.create_connection((server.host, server.port), timeout=5)
    try:
        client.sendall(b"GET /legacy/stream HTTP/1.1\r\nHost: gateway\r\n\r\n")
        wait_for(lambda: answer.sent > 4 * LegacyMount.send_queue_size, "the answer streaming")
    finally:
        # Stopped while the client is still connected: its request is cancelled, not ended.
        server.stop(timeout_s=10)
        client.close()
        gc.collect()  # the transport's warning comes now, while it is ignored
    assert wait_for(answer.closed.is_set, "the pool thread let go of the answer")
