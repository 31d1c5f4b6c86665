"""Run an ASGI app under uvicorn in a background thread on a port of its own.

Used to start the carrier stub beside the gateway, and by the tests to serve real apps
over real sockets.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from gateway.responses import ErrorFormats
from gateway.serving import UVICORN_OPTIONS, uvicorn_options
from gateway.settings import GatewaySettings


class BackgroundServer:
    """`settings` given: served as `gateway serve` serves, with its connection limits (their
    refusals in the error formats of `app`, when it is a gateway)."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: GatewaySettings | None = None,
        **config: Any,
    ):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        errors = getattr(app, "errors", None)
        options = (
            UVICORN_OPTIONS
            if settings is None
            else uvicorn_options(
                settings, errors if isinstance(errors, ErrorFormats) else ErrorFormats()
            )
        )
        config = {"log_level": "warning", "lifespan": "auto", **options} | config
        self.server = uvicorn.Server(uvicorn.Config(app, **config))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        # uvicorn offers no start-up event to wait on; poll its flag until a deadline.
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.005)
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout_s)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
