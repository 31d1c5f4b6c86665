"""The observability middleware: request id, metrics and access log for every request.

Pure ASGI and outermost, so that the gateway's own answers (413, 503, its error
middleware's 500) carry the request id and are counted like any other. One middleware
rather than three: one wrapped `send` and one clock reading per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability.logs import access_log, log_access
from gateway.observability.metrics import GatewayMetrics, forget_process, method_label
from gateway.observability.recent import RecentRequests
from gateway.observability.request_id import HEADER, adopt_request_id, request_id_var
from gateway.observability.routes import SCOPE_KEY, UNMATCHED, Observation, starlette_route

GATEWAY_STACK = "gateway"


class ObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        stacks: Mapping[str, str],
        metrics: GatewayMetrics | None,
        access_log: bool = True,
        multiprocess_dir: Path | None = None,
        recent: RecentRequests | None = None,
    ) -> None:
        """`stacks` maps a path prefix to its stack's name (`{"/legacy": "legacy"}`); paths
        under none of them are the gateway's own (`stack="gateway"`). `recent` keeps the
        last minutes of the two stacks' requests (not the gateway's own) for the readiness
        summary."""
        self.app = app
        self.metrics = metrics
        self.recent = recent
        self.access_log = access_log
        self.multiprocess_dir = multiprocess_dir
        # Longest prefix first, so that a nested prefix wins over its parent.
        self._stacks = tuple(
            (prefix.rstrip("/"), prefix.rstrip("/") + "/", name)
            for prefix, name in sorted(stacks.items(), key=lambda item: -len(item[0]))
        )

    def _stack(self, route_path: str) -> tuple[str, str]:
        for prefix, prefix_slash, name in self._stacks:
            if route_path == prefix or route_path.startswith(prefix_slash):
                return name, prefix
        return GATEWAY_STACK, ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.multiprocess_dir is not None:
            await self.app(scope, receive, self._forget_at_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id, scope["headers"] = adopt_request_id(scope["headers"])
        observation = Observation(request_id)
        scope[SCOPE_KEY] = observation
        # FastAPI handlers read it as `request.state.request_id` (or from the headers).
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        base: str = scope.get("root_path", "")
        path: str = scope["path"]
        stack, prefix = self._stack(path[len(base) :] if path.startswith(base) else path)
        stack_root = base + prefix
        status = 500  # what the client gets if the app fails before it answers
        id_header = (HEADER, request_id.encode("ascii"))
        recorded = False
        unsent: int | None = None  # bytes of a declared Content-Length still to send
        started = time.perf_counter()

        def record() -> None:
            nonlocal recorded
            recorded = True
            self._record(scope, observation, stack, stack_root, status, started)

        async def send_observed(message: Message) -> None:
            nonlocal status, unsent
            if message["type"] == "http.response.start":
                status = message["status"]
                # One pass, by hand: Starlette's MutableHeaders costs ten times as much.
                # ASGI header names are lower case; an id the app set itself is replaced.
                headers = []
                for header in message.get("headers", ()):
                    if header[0] == b"content-length" and header[1].isdigit():
                        unsent = int(header[1])
                    elif header[0] == HEADER:
                        continue
                    headers.append(header)
                headers.append(id_header)
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not recorded:
                # Recorded before the last of the answer leaves: a client that has its
                # answer finds it counted and logged. With a Content-Length, the client has
                # it all once that many bytes are sent, maybe before the final message (the
                # legacy mount sends an empty one). Background tasks are not timed.
                if unsent is not None:
                    unsent -= len(message.get("body", b""))
                if not message.get("more_body") or (unsent is not None and unsent <= 0):
                    record()
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except BaseException:
            if not recorded:
                record()
            # The id stays set: the server logs this failure next, and it is this request's.
            # (Each request runs in a task of its own, so it goes no further.)
            raise
        if not recorded:
            record()
        request_id_var.reset(token)

    def _record(
        self,
        scope: Scope,
        observation: Observation,
        stack: str,
        stack_root: str,
        status: int,
        started: float,
    ) -> None:
        seconds = time.perf_counter() - started
        route = observation.route or starlette_route(scope, stack_root) or UNMATCHED
        served_by = observation.served_by or stack
        method = method_label(scope["method"])
        if self.metrics is not None:
            self.metrics.observe_request(stack, served_by, method, route, status, seconds)
        if self.recent is not None and stack != GATEWAY_STACK:
            self.recent.record(stack, served_by, method, route, status, seconds)
        if self.access_log and access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            log_access(
                request_id=observation.request_id,
                stack=stack,
                served_by=served_by,
                method=method,
                route=route,
                status=status,
                seconds=seconds,
                client=client[0] if client else "-",
            )

    def _forget_at_shutdown(self, send: Send) -> Send:
        assert self.multiprocess_dir is not None
        directory = self.multiprocess_dir

        async def send_and_forget(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                # This worker's pool is gone: its live gauges must not count any more.
                forget_process(directory)
            await send(message)

        return send_and_forget
