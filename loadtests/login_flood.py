"""Wrong logins against a fresh gateway: what a password guesser gets, and what it costs.

    python -m loadtests.login_flood
    python -m loadtests.login_flood --database-url postgresql://postgres@127.0.0.1/test

Starts the carrier stub and the gateway (`gateway serve`, one process) on a fresh database
and reports:

- per stack, the statuses of 25 wrong passwords and then the right one, for one user from
  one client address;
- the server's resident memory (psutil) before and at its peak while 120 wrong logins
  arrive at once, and what a request to another route took meanwhile. Two floods: one
  from 120 addresses for 120 usernames (a spray, which only the cap on concurrent password
  hashes bounds), one from a single address for one username.

Client addresses are sent as `X-Forwarded-For`, which uvicorn trusts from 127.0.0.1.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from tempfile import TemporaryDirectory

import requests

from loadtests.dialect import Dialect
from loadtests.servers import DEMO_PASSWORD, ServerPlan, started_arm
from loadtests.usage import PeakRss, tree_rss
from shop.dialects import LEGACY, V2

WRONG_BEFORE_RIGHT = 25
FLOOD = 120
SAMPLE_EVERY_S = 0.02
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Client:
    base_url: str
    dialect: Dialect

    def login(self, username: str, password: str, address: str) -> requests.Response:
        assert self.dialect.login is not None
        request = self.dialect.login(username, password)
        headers = {**request.pop("headers", {}), "X-Forwarded-For": address}
        url = self.base_url + self.dialect.prefix + self.dialect.login_path
        return requests.post(url, headers=headers, timeout=TIMEOUT_S, **request)


def _mib(size: float) -> str:
    return f"{size / 2**20:.0f} MiB"


def wrong_then_right(client: Client, username: str, address: str) -> list[int]:
    statuses = [
        client.login(username, "wrong", address).status_code for _ in range(WRONG_BEFORE_RIGHT)
    ]
    return [*statuses, client.login(username, DEMO_PASSWORD, address).status_code]


def _compact(statuses: list[int]) -> str:
    """`401 x5, 429 x20` for a run of statuses."""
    return ", ".join(f"{status} x{len(list(run))}" for status, run in groupby(statuses))


def flood(
    clients: list[Client], pid: int, who: Callable[[int], tuple[str, str]], other_url: str
) -> str:
    """FLOOD wrong logins at once (alternating stacks); the peak RSS and another route meanwhile."""
    before = tree_rss(pid)[0]
    start = threading.Barrier(FLOOD + 1)

    def one(index: int) -> int:
        username, address = who(index)
        start.wait()
        return clients[index % 2].login(username, "wrong", address).status_code

    with PeakRss(pid, SAMPLE_EVERY_S) as peak, ThreadPoolExecutor(FLOOD) as pool:
        futures = [pool.submit(one, index) for index in range(FLOOD)]
        start.wait()
        began = time.monotonic()
        time.sleep(0.2)  # the flood has arrived: now time another route
        other_began = time.monotonic()
        other = requests.get(other_url, timeout=TIMEOUT_S)
        other_s = time.monotonic() - other_began
        statuses = Counter(future.result() for future in futures)
        flood_s = time.monotonic() - began
    counts = ", ".join(f"{status} x{count}" for status, count in sorted(statuses.items()))
    return (
        f"RSS {_mib(before)} -> peak {_mib(peak.peak_bytes)}; statuses {counts}; "
        f"all answered in {flood_s:.1f} s; GET {other_url.split('/', 3)[-1]} meanwhile: "
        f"{other.status_code} in {other_s * 1000:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", help="a PostgreSQL server to make a database on")
    options = parser.parse_args(argv)
    servers = ServerPlan(carrier_latency_ms=0, postgres_url=options.database_url)
    with (
        TemporaryDirectory(prefix="login-flood-") as workdir,
        started_arm("gateway", Path(workdir), servers) as server,
    ):
        base_url = server.url
        clients = [Client(base_url, LEGACY), Client(base_url, V2)]

        for number, (client, user) in enumerate(zip(clients, ["clerk", "viewer"], strict=True)):
            statuses = wrong_then_right(client, user, f"198.51.100.{number + 1}")
            stack = client.dialect.prefix.strip("/")
            print(f"{stack}: {WRONG_BEFORE_RIGHT} wrong then right: {_compact(statuses)}")

        pid = server.process.popen.pid
        spray = flood(
            clients,
            pid,
            lambda i: (f"nobody-{i}", f"203.0.113.{i + 1}"),
            f"{base_url}/v2/products/1",
        )
        print(f"{FLOOD} at once, {FLOOD} addresses and usernames: {spray}")
        one_target = flood(
            clients, pid, lambda _: ("admin", "192.0.2.1"), f"{base_url}/legacy/products/1"
        )
        print(f"{FLOOD} at once, one address, one username: {one_target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
