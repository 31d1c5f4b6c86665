"""v2 never blocks the event loop: `/v2/health` keeps answering while v2 reads and writes.

The gateway runs as `python -m gateway serve` in a process of its own. Many concurrent
reads (`GET /v2/products/{id}`, `GET /v2/orders/{id}`) and order writes keep it busy,
while a thread of this process asks `/v2/health` one request after the other.

What is asserted holds on a loaded 2-core machine: every probe answered 200, none took
PROBE_BOUND_S, and the probes' median is a fraction of the load's (the load queues: its
writes wait for SQLite's single writer or for PostgreSQL's row lock on the product). A
loop held by a wait (a lock, a network call, a sleep) fails the bound or the probes'
answer outright; a loop blocked on every request would make the probes wait as long as
the load does.

It does not see a synchronous call of a millisecond or less (a sqlite3 read in WAL mode
never waits for the writer): such a call costs throughput, which the benchmark measures.
asyncio's debug mode would name slow callbacks, but uvicorn turns it off on Python 3.11.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from gateway.background_server import BackgroundServer
from loadtests.servers import free_port
from tests.conftest import make_settings
from tests.support import Stack, wait_for

READERS = 24
WRITERS = 12
PROBES = 100
LOAD_REQUESTS = 1000
PROBE_TIMEOUT_S = 10.0
LOAD_TIMEOUT_S = 30.0
GRACE_S = 5.0
PROBE_BOUND_S = 2.0
# A probe waits for a turn of the loop, a load request for its place in the queue: with a
# blocked loop the two would wait alike.
QUEUE_FACTOR = 4
START_BOUND_S = 60.0


@pytest.fixture
def served_gateway(database_url: str, carrier: BackgroundServer, tmp_path: Path) -> Iterator[str]:
    """`python -m gateway serve` over the test database; its log in `tmp_path`."""
    port = free_port()
    settings = make_settings(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_ENV": "test",
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_SECRET_KEY": settings.secret_key.get_secret_value(),
        "GATEWAY_CARRIER_URL": carrier.url,
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_MIGRATE_ON_START": "false",
        "GATEWAY_SEED_ON_START": "false",
    }
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url, process), "the gateway answering", timeout_s=START_BOUND_S)
        yield url
    finally:
        process.terminate()
        try:
            # A server that failed the test may hold requests: its graceful shutdown would
            # wait for them (up to 30 s), to no purpose here.
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _answers(url: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "the gateway exited while starting"
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Load:
    """Reads and order writes from many concurrent clients until told to stop.

    A client that gets no answer records the error and stops: a server that drops
    connections has failed the test, and the probes need not wait for the rest.
    """

    url: str
    headers: dict[str, str]
    product_id: int
    customer_id: int
    order_id: int
    statuses: Counter[tuple[str, int | str]] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"read": [], "write": []})
    failed: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def answered(self) -> int:
        return sum(len(seconds) for seconds in self.seconds.values())

    async def _run(self, client: httpx.AsyncClient, kind: str, request: httpx.Request) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                answer = await client.send(request)
            except httpx.HTTPError as exc:
                self.statuses[kind, type(exc).__name__] += 1
                self.failed = True
                return
            self.seconds[kind].append(time.monotonic() - began)
            self.statuses[kind, answer.status_code] += 1

    async def reader(self, client: httpx.AsyncClient, index: int) -> None:
        path = f"/products/{self.product_id}" if index % 2 else f"/orders/{self.order_id}"
        request = client.build_request("GET", self.url + path, headers=self.headers)
        await self._run(client, "read", request)

    async def writer(self, client: httpx.AsyncClient) -> None:
        body = {
            "customer_id": self.customer_id,
            "items": [{"product_id": self.product_id, "quantity": 1}],
        }
        request = client.build_request(
            "POST", f"{self.url}/orders", json=body, headers=self.headers
        )
        await self._run(client, "write", request)

    def median_ms(self, kind: str) -> float:
        return statistics.median(self.seconds[kind]) * 1000 if self.seconds[kind] else 0.0


@dataclass(frozen=True)
class Probe:
    status: int | str
    seconds: float
    body: str


def _probe(url: str, load: Load) -> list[Probe]:
    """Health checks back to back, from the start of the load until it has answered
    LOAD_REQUESTS (and PROBES were made). The first probe that fails or takes
    PROBE_BOUND_S ends them: the next ones would only take longer."""
    probes: list[Probe] = []
    with httpx.Client(timeout=PROBE_TIMEOUT_S) as client:
        while not load.failed and (len(probes) < PROBES or load.answered < LOAD_REQUESTS):
            began = time.monotonic()
            try:
                answer = client.get(f"{url}/v2/health")
            except httpx.HTTPError as exc:
                probes.append(Probe(type(exc).__name__, time.monotonic() - began, ""))
                break
            probes.append(Probe(answer.status_code, time.monotonic() - began, answer.text))
            if answer.status_code != 200 or probes[-1].seconds >= PROBE_BOUND_S:
                break
    return probes


async def _under_load(url: str, load: Load) -> list[Probe]:
    limits = httpx.Limits(max_connections=READERS + WRITERS)
    # httpx's own transport, not the server, would be the bottleneck at this concurrency
    # (the README's reliability section); aiohttp's keeps the server busy.
    transport = AiohttpTransport(limits=limits, trust_env=False)
    async with httpx.AsyncClient(
        transport=transport, limits=limits, timeout=LOAD_TIMEOUT_S, trust_env=False
    ) as client:
        tasks = [asyncio.create_task(load.reader(client, i)) for i in range(READERS)]
        tasks += [asyncio.create_task(load.writer(client)) for _ in range(WRITERS)]
        try:
            return await asyncio.to_thread(_probe, url, load)
        finally:
            load.stop.set()
            # Requests under way finish; those a stuck server holds are given up.
            _, stuck = await asyncio.wait(tasks, timeout=GRACE_S)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)


def test_v2_health_answers_quickly_while_v2_reads_and_writes(
    served_gateway: str, v2: Stack, unique: str, tmp_path: Path
) -> None:
    product = v2.create_product(unique, stock=1_000_000)
    customer = v2.create_customer(unique)
    placed = v2.place_order(customer["id"], (product["id"], 1))
    assert placed.status_code == 201, placed.text
    load = Load(
        url=f"{served_gateway}/v2",
        headers={"Authorization": f"Bearer {v2.tokens['clerk']}"},
        product_id=product["id"],
        customer_id=customer["id"],
        order_id=placed.json()["id"],
    )

    probes = asyncio.run(_under_load(served_gateway, load))

    probe_ms = sorted(probe.seconds * 1000 for probe in probes)
    figures = (
        f"{len(probes)} health probes: median {statistics.median(probe_ms):.1f} ms, p99 "
        f"{probe_ms[len(probe_ms) * 99 // 100]:.1f} ms, slowest {probe_ms[-1]:.1f} ms; "
        f"the load: {load.answered} answers, median "
        f"{load.median_ms('read'):.1f} ms for reads, {load.median_ms('write'):.1f} ms for "
        f"writes; statuses {dict(load.statuses)}; failed probes "
        f"{[(p.status, round(p.seconds, 1)) for p in probes if p.status != 200]}; server log "
        f"{tmp_path / 'server.log'}"
    )
    assert all(p.status == 200 and '"ok"' in p.body for p in probes), figures
    assert probe_ms[-1] < PROBE_BOUND_S * 1000, figures
    assert set(load.statuses) == {("read", 200), ("write", 201)}, figures
    load_ms = statistics.median(s for kind in load.seconds.values() for s in kind) * 1000
    assert load_ms > QUEUE_FACTOR * statistics.median(probe_ms), figures
