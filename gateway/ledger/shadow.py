"""Serving `shadow`: the primary answers the client; v2 answers the same request afterwards,
and the two answers are compared (compare.py).

The client's answer is the legacy app's, untouched and undelayed: the messages it sends are
passed on as they come and a copy is kept (`capture`). Once the last of them is sent, a
background task calls the route's adapter (v2 in the legacy contract, in process) with the
same request and compares the two answers under the route's noise rules.

A mismatch is checked once more, as Diffy does: the primary is asked the same request
again, and whatever differs between its own two answers is noise for this request (a stock
count that an order changed between the primary's answer and the shadow's, a timestamp).
The shadow is asked again right after it, and a difference the two fresh answers no
longer show is noise too: a stock count taken by an order and given back by a cancel
between the first answers reads the same in the primary's two answers, but not in the
shadow's. Only the differences that remain count; with none left, the answers matched.

Only safe methods (GET, HEAD) are shadowed: a write run twice changes the data twice. Of
those, the route's `share` (percent) is sampled. The work is bounded: at most
`max_concurrency` shadow calls are pending or running at once, and each must be done
within `timeout_s` of the primary answer; a request over either bound is dropped and
counted, never queued beyond them. Whatever the shadow call does (raise, hang, answer
garbage) reaches the results, never the client.

Shadow work can yield to the clients. It runs on the clients' core, in their event loop,
and its CPU (v2's answer, the comparison) is about as much as the primary's own answer. A
shadow call waits, up to `wait_for_idle_s` after the primary answer (0 by default: not at
all), for a moment when no client request is in flight in the process (`ClientsInFlight`,
a middleware around the gateway, counts them), then starts, or anyway once the wait is
over; the calls start one at a time, in order. Waiting calls count against
`max_concurrency`: on the shop at 100 req/s, with no limit to the wait 38 % of the calls
were dropped, and with 0.05 s 25 %, for no gain in the clients' p95 that the load runs
could tell from their noise (a request in flight is often one waiting on the carrier or
the database, not computing).

Results are per route and per process (as the other request metrics are): counts of
matched, mismatched, errored and dropped, the last mismatches (redacted), and the counter
`gateway_shadow_comparisons_total{route, result}` through `observer`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.ledger.compare import (
    DEFAULT_RULES,
    Answer,
    Difference,
    compare,
    redacted,
)
from gateway.ledger.model import FULL_SHARE, LedgerRoute
from gateway.observability.request_id import current_request_id
from gateway.observability.routes import SCOPE_KEY

log = logging.getLogger("gateway.shadow")

Result = Literal["matched", "mismatched", "errored", "dropped"]
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
# A primary answer larger than this is not kept, nor its request shadowed (dropped).
MAX_CAPTURED_BYTES: Final = 1024 * 1024
# A value kept in a mismatch is cut to this many characters of its JSON text.
MAX_KEPT_CHARS: Final = 2000


@dataclass
class Counts:
    matched: int = 0
    mismatched: int = 0
    errored: int = 0
    dropped: int = 0

    @property
    def compared(self) -> int:
        return self.matched + self.mismatched


@dataclass(frozen=True)
class Mismatch:
    """A shadowed request whose two answers differed, as kept (redacted, values cut)."""

    route_id: str
    request_id: str
    at: datetime
    method: str
    path: str
    differences: tuple[Difference, ...]


class ShadowResults:
    """Counts per route, and the last `keep` mismatches of each route, in this process."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._counts: dict[str, Counts] = {}
        self._mismatches: dict[str, deque[Mismatch]] = {}

    def counts(self, route_id: str) -> Counts:
        """A copy: the route's counts as they are now."""
        return replace(self._counts.get(route_id, Counts()))

    def mismatches(self, route_id: str) -> list[Mismatch]:
        """The latest first."""
        return list(reversed(self._mismatches.get(route_id, ())))

    def record(self, route_id: str, result: Result, mismatch: Mismatch | None = None) -> None:
        counts = self._counts.setdefault(route_id, Counts())
        setattr(counts, result, getattr(counts, result) + 1)
        if mismatch is not None and self.keep > 0:
            self._mismatches.setdefault(route_id, deque(maxlen=self.keep)).append(mismatch)


@dataclass
class Captured:
    """The primary answer as it went to the client."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    complete: bool = False
    overflow: bool = False

    def answer(self) -> Answer:
        return Answer(self.status, self.headers, b"".join(self.chunks))


def capture(send: Send) -> tuple[Send, Captured]:
    """`send`, passing every message on unchanged, and the copy it keeps."""
    captured = Captured()

    async def send_and_keep(message: Message) -> None:
        if message["type"] == "http.response.start":
            captured.status = message["status"]
            captured.headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            captured.size += len(body)
            if captured.size > MAX_CAPTURED_BYTES:
                captured.overflow = True
                captured.chunks.clear()
            elif not captured.overflow:
                captured.chunks.append(body)
            captured.complete = not message.get("more_body", False)
        await send(message)

    return send_and_keep, captured


Observer = Callable[[str, str], None]


class Shadow:
    """Samples, runs and compares the shadow calls of every route in `shadow`."""

    def __init__(
        self,
        *,
        max_concurrency: int,
        timeout_s: float,
        keep_mismatches: int,
        wait_for_idle_s: float = 0.0,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.wait_for_idle_s = wait_for_idle_s
        self.results = ShadowResults(keep_mismatches)
        # Told every result (route id, result): the metrics, once they exist.
        self.observer: Observer | None = None
        self._sample = sample
        # Held so that a running task is not collected, and awaited at shutdown.
        self._tasks: set[asyncio.Task[None]] = set()
        # Client requests in flight (`ClientsInFlight`), and the calls' turn to start.
        self._clients = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._turn = asyncio.Lock()

    def client_arrived(self) -> None:
        self._clients += 1
        self._idle.clear()

    def client_left(self) -> None:
        self._clients -= 1
        if not self._clients:
            self._idle.set()

    async def _start_when_idle(self, until: float) -> None:
        """Returns at a moment no client request is in flight, or at `until` (loop time)
        at the latest; the calls waiting start in turn, one per pass of the loop."""
        async with self._turn:
            with suppress(TimeoutError):
                async with asyncio.timeout_at(until):
                    while True:
                        await self._idle.wait()
                        # The calls started before this one, and the clients arriving
                        # meanwhile, have the loop first: still idle after that, it starts.
                        await asyncio.sleep(0)
                        if self._idle.is_set():
                            return

    def wanted(self, method: str, share: int) -> bool:
        """Whether this request is shadowed: a safe method, in the route's sample."""
        if method not in SAFE_METHODS or share <= 0:
            return False
        return share >= FULL_SHARE or self._sample() * FULL_SHARE < share

    def submit(
        self,
        route: LedgerRoute,
        params: Mapping[str, Any],
        scope: Scope,
        captured: Captured,
        *,
        v2: ASGIApp,
        primary: ASGIApp,
    ) -> None:
        """After the primary answer is sent: start its shadow call, or drop it now.

        `primary` is the app that answered (asked again when the answers differ)."""
        if route.adapter is None:
            return
        if (
            not captured.complete
            or captured.overflow
            or self.timeout_s <= 0
            or len(self._tasks) >= self.max_concurrency
        ):
            self._record(route.id, "dropped")
            return
        task = asyncio.create_task(
            self._run(route, params, scope, captured.answer(), current_request_id(), v2, primary),
            name=f"gateway shadow {route.id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def join(self) -> None:
        """Wait for the calls in flight to end by themselves (a test's, or a drain's)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """At shutdown, before the apps close: the calls in flight are abandoned."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def _run(
        self,
        route: LedgerRoute,
        params: Mapping[str, Any],
        scope: Scope,
        primary: Answer,
        request_id: str,
        v2: ASGIApp,
        primary_app: ASGIApp,
    ) -> None:
        rules = route.shadow or DEFAULT_RULES
        # Started just after the primary answer: both bounds count from there.
        now = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout_at(now + self.timeout_s):
                if self.wait_for_idle_s > 0:
                    await self._start_when_idle(now + self.wait_for_idle_s)
                shadow = await _call(route, params, scope, v2)
                differences = list(compare(primary, shadow, rules).differences)
                if differences:
                    # Both asked again, back to back: what the primary changed meanwhile is
                    # noise, and so is what the two no longer differ on when asked at once.
                    again = await _collect(primary_app, scope)
                    shadow_again = await _call(route, params, scope, v2)
                    noise = {d.pointer for d in compare(primary, again, rules).differences}
                    lasting = {d.pointer for d in compare(again, shadow_again, rules).differences}
                    differences = [
                        d
                        for d in differences
                        if not _within(d.pointer, noise) and _within(d.pointer, lasting)
                    ]
        except TimeoutError:
            self._record(route.id, "dropped")
            return
        except Exception:
            log.warning("shadow call of %s failed", route.id, exc_info=True)
            self._record(route.id, "errored")
            return
        if not differences:
            self._record(route.id, "matched")
            return
        path: str = scope.get("path", "")
        query: bytes = scope.get("query_string", b"")
        mismatch = Mismatch(
            route_id=route.id,
            request_id=request_id,
            at=datetime.now(UTC),
            method=scope["method"],
            path=path + ("?" + query.decode("latin-1") if query else ""),
            differences=tuple(_kept(redacted(d, rules)) for d in differences),
        )
        self._record(route.id, "mismatched", mismatch)

    def _record(self, route_id: str, result: Result, mismatch: Mismatch | None = None) -> None:
        self.results.record(route_id, result, mismatch)
        if self.observer is not None:
            self.observer(route_id, result)


class ClientsInFlight:
    """Pure ASGI, around the gateway: tells `shadow` when HTTP requests come and go."""

    def __init__(self, app: ASGIApp, *, shadow: Shadow) -> None:
        self.app = app
        self.shadow = shadow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.shadow.client_arrived()
        try:
            await self.app(scope, receive, send)
        finally:
            self.shadow.client_left()


async def _call(route: LedgerRoute, params: Mapping[str, Any], scope: Scope, v2: ASGIApp) -> Answer:
    """The adapter's answer to `scope`, collected whole."""
    adapter = route.adapter
    assert adapter is not None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await adapter(scope, receive, send, params=params, v2=v2)

    return await _collect(app, scope)


async def _collect(app: Callable[[Scope, Receive, Send], Awaitable[None]], scope: Scope) -> Answer:
    """`app`'s answer to the request of `scope` (a safe method: no body), collected whole."""
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    head = scope["method"] == "HEAD"
    # The call has no client of its own: the request's body (a safe method's, empty) and
    # then nothing until the time budget ends the call.
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}  # pragma: no cover - the wait never ends

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body" and not head:
            chunks.append(message.get("body", b""))

    # HEAD as the dispatch serves it in `v2`: the GET's answer, without its body. Not
    # observed: the request was counted once, when it was answered.
    child = {key: value for key, value in scope.items() if key != SCOPE_KEY}
    if head:
        child["method"] = "GET"
    await app(child, receive, send)
    return Answer(status, headers, b"".join(chunks))


def _within(pointer: str, noise: set[str]) -> bool:
    """Whether `pointer` is one of the noisy places, inside one, or holds one."""
    return any(
        pointer == place or pointer.startswith(place + "/") or place.startswith(pointer + "/")
        for place in noise
    )


def _kept(difference: Difference) -> Difference:
    return Difference(
        difference.part,
        difference.pointer,
        _cut(difference.primary),
        _cut(difference.shadow),
    )


def _cut(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value[:MAX_KEPT_CHARS] if isinstance(value, str) else value
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return value if len(text) <= MAX_KEPT_CHARS else text[:MAX_KEPT_CHARS] + "..."
