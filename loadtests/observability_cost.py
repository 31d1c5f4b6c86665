"""What the gateway's observability costs per request, measured in process.

    python -m loadtests.observability_cost [--rounds 15] [--access-log off|text|json]

A trivial FastAPI route and a trivial Flask route (through `LegacyMount`) are called
through a root app built twice, with and without `install_observability`, in interleaved
rounds; the fastest round of each is kept, so that the noise of a shared machine counts as
little as it can. No sockets: the figure is the middleware's own cost, which a server
run would only blur. `--access-log` writes the access-log line to memory in that format.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from starlette.types import ASGIApp, Message

from gateway.legacy_mount import LegacyMount
from gateway.observability import install_observability
from gateway.observability.logs import access_log, log_handler

STACKS = {"/legacy": "legacy", "/v2": "v2"}
PATHS = {"/v2/items/1": 3000, "/legacy/items/1": 1000}


def _flask_app() -> Flask:
    app = Flask("cost_legacy")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> ResponseReturnValue:
        return jsonify(id=item_id)

    return app


def _fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


def _root(observed: bool) -> tuple[FastAPI, LegacyMount]:
    legacy = LegacyMount(_flask_app(), workers=4)
    root = FastAPI()
    root.mount("/legacy", legacy)
    root.mount("/v2", _fastapi_app())
    if observed:
        install_observability(root, stacks=STACKS, legacy_mount=legacy)
    return root, legacy


async def _call(app: ASGIApp, path: str) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    await app(scope, receive, send)


async def _microseconds_per_request(app: ASGIApp, path: str, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await _call(app, path)
    return (time.perf_counter() - started) / count * 1e6


async def _measure(rounds: int) -> None:
    apps = {observed: _root(observed) for observed in (False, True)}
    try:
        for path, count in PATHS.items():
            best = {False: float("inf"), True: float("inf")}
            for _ in range(rounds):
                for observed, (app, _) in apps.items():
                    took = await _microseconds_per_request(app, path, count)
                    best[observed] = min(best[observed], took)
            off, on = best[False], best[True]
            print(
                f"{path:18} off {off:7.1f} us  on {on:7.1f} us  "
                f"+{on - off:5.1f} us/request  throughput on/off {off / on:.3f}"
            )
    finally:
        for _, legacy in apps.values():
            legacy.shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--access-log", choices=["off", "text", "json"], default="off")
    args = parser.parse_args(argv)
    if args.access_log != "off":
        access_log.addHandler(log_handler(args.access_log, io.StringIO()))
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
    asyncio.run(_measure(args.rounds))


if __name__ == "__main__":
    main()
