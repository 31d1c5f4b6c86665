"""Carrier services that misbehave in ways the stub cannot, for fault tests.

- `GatedCarrier` holds every rate request until the test opens its gate: it keeps legacy
  pool threads busy for exactly as long as a test needs, and tells the test when they are.
- `trickling_carrier` sends its headers at once, then its body a byte at a time: a read
  timeout per socket read never fires, only a deadline on the whole answer does.
- `hanging_up_carrier` promises a body it never sends, and closes the connection.
- `oversized_carrier` answers a valid rate inside megabytes of whitespace.
- `SilentHangUp` reads a request and closes the connection before any answer.
- `redirecting_carrier` answers every request with a redirect elsewhere, and
  `CountingCarrier` answers a valid rate and counts who asked: the place a redirect
  points to, which no gateway should call.
- `StatusCarrier` answers every request with one status (and headers), and counts them.
- `InFlightCarrier` answers a valid rate after a delay, and tells the most calls it had
  in hand at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from typing import Any

from starlette.types import Receive, Scope, Send

RATE = {"carrier": "gated-express", "amount": "5.40", "currency": "EUR", "eta_days": 2}
MAX_HOLD_S = 30.0  # a test that forgets to open the gate must not hang the server for good


async def _read_body(receive: Receive) -> None:
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = bool(message.get("more_body", False))


async def _start(send: Send, length: int, content_type: bytes = b"application/json") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(length).encode()),
            ],
        }
    )


class GatedCarrier:
    """An ASGI carrier whose answers wait for `open_gate()`; counts the requests it holds."""

    def __init__(self) -> None:
        self._gate = threading.Event()
        self._arrived = 0
        self._changed = threading.Condition()
        # The server's loop and an event in it, so that the test's thread can wake it.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opened: asyncio.Event | None = None

    @property
    def arrived(self) -> int:
        with self._changed:
            return self._arrived

    def wait_for_arrivals(self, count: int, timeout_s: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._arrived >= count, timeout_s)

    def open_gate(self) -> None:
        self._gate.set()
        if self._loop is not None and self._opened is not None:
            with contextlib.suppress(RuntimeError):  # the server has stopped already
                self._loop.call_soon_threadsafe(self._opened.set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _read_body(receive)
        if self._opened is None:
            self._loop, self._opened = asyncio.get_running_loop(), asyncio.Event()
        with self._changed:
            self._arrived += 1
            self._changed.notify_all()
        # The flag is checked after the event exists: an open_gate() that found no
        # event yet has set the flag by now.
        if not self._gate.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._opened.wait(), MAX_HOLD_S)
        body = json.dumps(RATE).encode()
        await _start(send, len(body))
        await send({"type": "http.response.body", "body": body})


def trickling_carrier(interval_s: float) -> Any:
    """A carrier that answers a valid rate, one byte every `interval_s`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _read_body(receive)
        body = json.dumps(RATE).encode()
        await _start(send, len(body))
        gone = asyncio.Event()

        async def watch_for_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch_for_disconnect())
        try:
            for index in range(len(body)):
                if gone.is_set():
                    return  # the client gave up: stop, so that the server can stop too
                more = index < len(body) - 1
                byte = body[index : index + 1]
                await send({"type": "http.response.body", "body": byte, "more_body": more})
                await asyncio.sleep(interval_s)
        finally:
            watcher.cancel()

    return app


async def hanging_up_carrier(scope: Scope, receive: Receive, send: Send) -> None:
    """Promises 1000 bytes, sends ten, and returns: the server then drops the connection."""
    if scope["type"] != "http":
        return
    await _read_body(receive)
    await _start(send, 1000)
    await send({"type": "http.response.body", "body": b'{"carrier"', "more_body": True})


async def oversized_carrier(scope: Scope, receive: Receive, send: Send) -> None:
    """A valid rate padded to 10 MiB of JSON: no gateway should hold that in memory."""
    if scope["type"] != "http":
        return
    await _read_body(receive)
    padding = b" " * (10 * 1024 * 1024)
    body = json.dumps(RATE).encode()
    await _start(send, len(padding) + len(body))
    await send({"type": "http.response.body", "body": padding, "more_body": True})
    await send({"type": "http.response.body", "body": body})


def redirecting_carrier(location: str, status: int = 307) -> Any:
    """A carrier that has moved: `status` with `Location: location`, and no rate.

    307 keeps the method and the body, so a client that follows it posts the order again,
    to wherever the carrier (or whoever answers in its place) points.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _read_body(receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


class _Counted:
    """Counts the requests it is sent (the servers call it from their own thread)."""

    def __init__(self) -> None:
        self._calls = 0
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        with self._lock:
            return self._calls

    async def _counted(self, scope: Scope, receive: Receive) -> bool:
        """Counts an HTTP request and reads its body; False for anything else."""
        if scope["type"] != "http":
            return False
        with self._lock:
            self._calls += 1
        await _read_body(receive)
        return True


class CountingCarrier(_Counted):
    """A carrier that answers every request with a valid rate and counts them."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._counted(scope, receive):
            return
        body = json.dumps(RATE).encode()
        await _start(send, len(body))
        await send({"type": "http.response.body", "body": body})


class SilentHangUp:
    """A TCP listener that reads a request and closes the connection without a byte.

    No ASGI app can do this (its server would answer 500): a client must tell this apart
    from a timeout, which it is not.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2.0)
                with contextlib.suppress(OSError):
                    connection.recv(65536)

    def __enter__(self) -> SilentHangUp:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._thread.join(5.0)
        self._listener.close()


class StatusCarrier(_Counted):
    """A carrier that answers every request with `status` and `headers`, and counts them."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.status = status
        self.headers = headers or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._counted(scope, receive):
            return
        body = b'{"error": "no"}'
        headers = [(name.lower().encode(), value.encode()) for name, value in self.headers.items()]
        headers += [(b"content-type", b"application/json"), (b"content-length", b"15")]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class InFlightCarrier:
    """A carrier that answers a valid rate after `latency_s`; `most_in_flight` is the most
    requests it was answering at once."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self._in_flight = 0
        self._most = 0
        self._lock = threading.Lock()

    @property
    def most_in_flight(self) -> int:
        with self._lock:
            return self._most

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _read_body(receive)
        with self._lock:
            self._in_flight += 1
            self._most = max(self._most, self._in_flight)
        try:
            await asyncio.sleep(self.latency_s)
        finally:
            with self._lock:
                self._in_flight -= 1
        body = json.dumps(RATE).encode()
        await _start(send, len(body))
        await send({"type": "http.response.body", "body": body})
