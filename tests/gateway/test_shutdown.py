"""Graceful shutdown: SIGTERM to `python -m gateway serve` while orders pour in on both stacks.

What must hold: requests already being processed are answered (two shipping quotes are
held at the carrier across the signal, one per stack), no order is half written (every
order has its items, the stock matches the orders answered 201, and no order exists that
was not answered 201), and the process exits within a bound.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, func, select

from gateway.background_server import BackgroundServer
from loadtests.servers import free_port
from shop_core.models import Order, OrderItem, Product
from tests.carriers import GatedCarrier
from tests.conftest import make_settings
from tests.support import Stack

EXIT_BOUND_S = 30.0
START_BOUND_S = 60.0
LOAD_THREADS = 40


class Server:
    """`python -m gateway serve` in a subprocess, with its log read as it comes."""

    def __init__(self, database_url: str, carrier_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = make_settings(database_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env |= {
            "GATEWAY_ENV": "test",
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_SECRET_KEY": settings.secret_key.get_secret_value(),
            "GATEWAY_CARRIER_URL": carrier_url,
            "GATEWAY_CARRIER_TIMEOUT_S": "30",
            "GATEWAY_LOG_LEVEL": "INFO",
            "GATEWAY_MIGRATE_ON_START": "false",
            "GATEWAY_SEED_ON_START": "false",
        }
        command = [sys.executable, "-m", "gateway", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._seen:
                self.log.append(line)
                self._seen.notify_all()
        with self._seen:
            self.log.append("<exited>")
            self._seen.notify_all()

    def wait_for_log(self, text: str, timeout_s: float) -> bool:
        with self._seen:
            return self._seen.wait_for(
                lambda: any(text in line or line == "<exited>" for line in self.log), timeout_s
            ) and any(text in line for line in self.log)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._reader.join(10)
        assert self.process.stderr is not None
        self.process.stderr.close()


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return type(exc).__name__


@dataclass
class Load:
    """Orders sent back to back from many threads until the server stops taking them."""

    stacks: list[Stack]
    customer_id: int
    product_ids: list[int]
    accepted: dict[int, dict[int, int]] = field(default_factory=dict)  # order id -> items
    statuses: Counter[int] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, index: int) -> None:
        stack = self.stacks[index % 2]
        headers = {"Authorization": f"Bearer {stack.tokens['clerk']}"}
        rng = random.Random(index)
        while True:
            items = {pid: rng.randint(1, 2) for pid in rng.sample(self.product_ids, k=2)}
            body = {
                "customer_id": self.customer_id,
                "items": [{"product_id": pid, "quantity": qty} for pid, qty in items.items()],
            }
            try:
                answer = requests.post(
                    f"{stack.url}/orders", json=body, headers=headers, timeout=60
                )
            except requests.ConnectionError as exc:
                # Refused, or reset before the server took the connection: never processed
                # (the rows are checked for that below).
                with self.lock:
                    self.refused[_root_cause(exc)] += 1
                return
            with self.lock:
                self.statuses[answer.status_code] += 1
                if answer.status_code == 201:
                    self.accepted[answer.json()["id"]] = items

    def answered(self) -> int:
        with self.lock:
            return sum(self.statuses.values())


@pytest.fixture
def held_carrier() -> Iterator[tuple[GatedCarrier, str]]:
    carrier = GatedCarrier()
    with BackgroundServer(carrier, lifespan="off") as server:
        try:
            yield carrier, server.url
        finally:
            carrier.open_gate()


def _stocks(db: Engine, product_ids: list[int]) -> dict[int, int]:
    with db.connect() as conn:
        rows = conn.execute(select(Product.id, Product.stock).where(Product.id.in_(product_ids)))
        return {pid: stock for pid, stock in rows}


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_sigterm_under_load_answers_what_is_in_flight_and_writes_no_half_order(
    database_url: str,
    db: Engine,
    legacy: Stack,
    tokens: dict[str, str],
    held_carrier: tuple[GatedCarrier, str],
    unique: str,
) -> None:
    carrier, carrier_url = held_carrier
    products = [legacy.create_product(f"{unique}{i}", stock=200) for i in range(3)]
    product_ids = [product["id"] for product in products]
    customer = legacy.create_customer(unique)
    placed = legacy.place_order(customer["id"], (product_ids[0], 1))
    assert placed.status_code == 201, placed.text
    quoted_order = placed.json()["id"]
    before = _stocks(db, product_ids)

    server = Server(database_url, carrier_url)
    try:
        assert server.wait_for_log("Uvicorn running on", START_BOUND_S), "".join(server.log)
        stacks = [Stack(name, server.url, tokens) for name in ("legacy", "v2")]
        load = Load(stacks, customer["id"], product_ids)
        with ThreadPoolExecutor(LOAD_THREADS + 2) as pool:
            quotes: list[Future[requests.Response]] = [
                pool.submit(
                    stack.get, "/shipping/quote", params={"order_id": quoted_order}, user="viewer"
                )
                for stack in stacks
            ]
            assert carrier.wait_for_arrivals(2), "the quotes never reached the carrier"
            workers = [pool.submit(load.run, index) for index in range(LOAD_THREADS)]
            deadline = time.monotonic() + 30
            while load.answered() < 50:
                assert time.monotonic() < deadline, f"no load: {load.statuses}, {load.refused}"
                threading.Event().wait(0.01)

            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            assert server.wait_for_log("Shutting down", 10), "".join(server.log)
            deadline = time.monotonic() + 10
            while not _refuses_connections(server.port):
                assert time.monotonic() < deadline, "still accepting connections"
            # The server is shutting down, and the quotes are still being processed.
            assert server.process.poll() is None
            carrier.open_gate()
            returncode = server.process.wait(EXIT_BOUND_S)
            exit_s = time.monotonic() - signalled
            for worker in workers:
                worker.result(timeout=30)
            answers = [quote.result(timeout=30) for quote in quotes]
    finally:
        server.stop()

    log = "".join(server.log)
    assert [answer.status_code for answer in answers] == [200, 200], [a.text for a in answers]
    assert returncode in (0, -signal.SIGTERM), log
    assert exit_s < EXIT_BOUND_S
    assert "Application shutdown complete" in log, log
    assert set(load.statuses) <= {201, 409}, load.statuses
    assert load.accepted, load.statuses

    taken: Counter[int] = Counter()
    for items in load.accepted.values():
        taken.update(items)
    assert _stocks(db, product_ids) == {pid: before[pid] - taken[pid] for pid in product_ids}
    with db.connect() as conn:
        orders: dict[int, Any] = dict(
            conn.execute(
                select(Order.id, func.count(OrderItem.id))
                .outerjoin(OrderItem)
                .where(Order.customer_id == customer["id"], Order.id != quoted_order)
                .group_by(Order.id)
            ).all()
        )
    # Every order written was answered 201 (none lost its answer to a reset), whole.
    assert set(orders) == set(load.accepted)
    assert all(orders[oid] == len(items) for oid, items in load.accepted.items())
