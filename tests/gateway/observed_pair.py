"""A toy Flask/FastAPI pair composed under a root app with the gateway's observability.

Small on purpose: the observability must work for any team's pair, not only the shop's.
Run as a script, it serves the pair once and makes a few requests, for the multiprocess
test (`python -m tests.gateway.observed_pair DIR LEGACY_COUNT V2_COUNT`).
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

import requests
from fastapi import FastAPI, Request
from flask import Flask, Response, jsonify
from flask import request as flask_request

from gateway.background_server import BackgroundServer
from gateway.body_limit import BodyLimits
from gateway.legacy_mount import LegacyMount
from gateway.observability import Observability, install_observability
from gateway.responses import ErrorFormats

STACKS = {"/legacy": "legacy", "/v2": "v2"}
MAX_BODY_BYTES = 1024

legacy_log = logging.getLogger("toy.legacy")
v2_log = logging.getLogger("toy.v2")


class Gate:
    """Holds the legacy `/wait` route until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.open = threading.Event()


def create_flask_app(gate: Gate) -> Flask:
    app = Flask("toy_legacy")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Response:
        legacy_log.warning("legacy item %d", item_id)
        return jsonify(
            id=item_id,
            header_id=flask_request.headers.get("X-Request-ID"),
            environ_id=flask_request.environ.get("gateway.request_id"),
        )

    @app.get("/wait")
    def wait() -> Response:
        gate.entered.release()
        gate.open.wait(30)
        return jsonify(waited=True)

    return app


def create_fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int, request: Request) -> dict[str, Any]:
        v2_log.warning("v2 item %d", item_id)
        return {
            "id": item_id,
            "header_id": request.headers.get("x-request-id"),
            "state_id": getattr(request.state, "request_id", None),
        }

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("an unhandled failure")

    return app


class Pair:
    """The composed root app and its handles."""

    def __init__(self, **options: Any) -> None:
        self.gate = Gate()
        self.legacy = LegacyMount(
            create_flask_app(self.gate),
            workers=options.pop("workers", 2),
            queue_timeout_s=options.pop("queue_timeout_s", 5.0),
        )
        self.app = FastAPI()
        self.app.mount("/legacy", self.legacy)
        self.app.mount("/v2", create_fastapi_app())
        self.app.add_middleware(
            BodyLimits, max_bytes=MAX_BODY_BYTES, timeout_s=10.0, errors=ErrorFormats()
        )

        @self.app.get("/boom")
        async def boom() -> None:
            # Answered by the root app's own error middleware, outside any user middleware.
            raise RuntimeError("an unhandled failure in the gateway")

        self.observability: Observability = install_observability(
            self.app, stacks=STACKS, legacy_mount=self.legacy, **options
        )

    def close(self) -> None:
        self.gate.open.set()
        self.legacy.shutdown()


def _serve_a_few(multiprocess_dir: Path, legacy_count: int, v2_count: int) -> None:
    pair = Pair(multiprocess_dir=multiprocess_dir)
    try:
        with BackgroundServer(pair.app) as server, requests.Session() as http:
            for n in range(legacy_count):
                http.get(f"{server.url}/legacy/items/{n}", timeout=10).raise_for_status()
            for n in range(v2_count):
                http.get(f"{server.url}/v2/items/{n}", timeout=10).raise_for_status()
    finally:
        pair.close()


if __name__ == "__main__":
    _serve_a_few(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
