"""The data plane: each legacy request served as its route's state says.

`LedgerDispatch` sits in front of the legacy mount, at the legacy prefix. It matches the
request's method and path against the ledger's rules (compiled once), reads the route's
status from memory (`RouteStatuses.current`: no database trip per request), and:

- `legacy`: the legacy app answers;
- `shadow`: the legacy app answers; then, for the route's share of the safe requests, its
  adapter answers the same request with the v2 app and the answers are compared
  (shadow.py);
- `canary`: the route's share of the clients (sticky) get the adapter's answer, the others
  the legacy app's; each side's outcome is recorded for the judge (canary.py);
- `v2`: the route's adapter answers with the v2 app, in the legacy contract;
- `retired`: 410 in the legacy error format, with the successor's link.

A request that matches no rule goes to the legacy app, which answers it as it always has
(404, 405, and the routes nobody listed). `HEAD` follows its `GET` route's state, as Flask
answers HEAD for every GET rule by itself: in `v2` the adapter serves the GET and the body
is dropped, so the headers (length, ETag) are the GET's. `OPTIONS`, which Flask answers
from its URL map without running a view, stays with the legacy app.

Once a route is announced (a deprecation or a sunset date), every answer of it carries
`Deprecation` (RFC 9745), `Sunset` (RFC 8594) and `Link: <v2 URL>; rel="successor-version"`
(RFC 5829), whoever serves it.
"""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.ledger.canary import Canary
from gateway.ledger.inprocess import V2_ROOT_KEY
from gateway.ledger.model import Ledger, LedgerRoute, RouteState, RouteStatus, RouteStatuses
from gateway.ledger.rules import CompiledRule, compile_rule, fill_path
from gateway.ledger.shadow import Shadow, capture
from gateway.observability.routes import SCOPE_KEY, Observation, normalise_werkzeug_rule
from gateway.responses import ErrorFormat, ErrorFormats, send_error

SERVED_BY_V2: Final = "v2"
SERVED_BY_GATEWAY: Final = "gateway"


class LedgerDispatch:
    def __init__(
        self,
        legacy: ASGIApp,
        *,
        ledger: Ledger,
        statuses: RouteStatuses,
        v2: ASGIApp | None,
        legacy_prefix: str,
        v2_prefix: str,
        legacy_errors: ErrorFormat,
        shadow: Shadow | None = None,
        canary: Canary | None = None,
    ) -> None:
        self.legacy = legacy
        self.shadow = shadow
        self.canary = canary
        self.ledger = ledger
        # Public: the control plane may hand the dispatch another store once it is open.
        self.statuses = statuses
        self.v2 = v2
        self.legacy_prefix = legacy_prefix.rstrip("/")
        self.v2_prefix = v2_prefix.rstrip("/")
        self._errors = ErrorFormats(sides=(("", legacy_errors),))
        rules: dict[str, list[tuple[CompiledRule, LedgerRoute]]] = {}
        for route in ledger.routes:
            compiled = compile_rule(route.legacy_rule, ledger.converters)
            rules.setdefault(route.legacy_method.upper(), []).append((compiled, route))
        self._rules = {method: tuple(found) for method, found in rules.items()}

    def match(self, method: str, path: str) -> tuple[LedgerRoute, dict[str, Any]] | None:
        """The route `method path` (under the legacy prefix) is, with its parameters."""
        rules = self._rules.get(method, ())
        if method == "HEAD":
            rules = (*rules, *self._rules.get("GET", ()))
        for rule, route in rules:
            params = rule.match(path)
            if params is not None:
                return route, params
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.legacy(scope, receive, send)
            return
        root: str = scope.get("root_path", "")
        path: str = scope["path"]
        found = self.match(scope["method"], path[len(root) :] if path.startswith(root) else path)
        if found is None:
            await self.legacy(scope, receive, send)
            return
        route, params = found
        status = self.statuses.current(route.id)
        # Where v2 is mounted, seen from this request: the gateway may itself be mounted.
        v2_root = root.removesuffix(self.legacy_prefix) + self.v2_prefix
        successor = None if route.v2_path is None else v2_root + fill_path(route.v2_path, params)
        announced = _announcement(route, status, successor)
        if announced:
            send = _with_headers(send, announced)
        observation = scope.get(SCOPE_KEY)
        if isinstance(observation, Observation):
            observation.route = normalise_werkzeug_rule(route.legacy_rule)

        if (
            status.state is RouteState.CANARY
            and self.canary is not None
            and route.adapter is not None
            and self.v2 is not None
        ):
            side = self.canary.side(scope, route.id, status.share)
            send, failed = self.canary.observe(send, route.id, side)
            try:
                if side == "v2":
                    await self._adapted(route, params, scope, receive, send, v2_root, observation)
                else:
                    await self.legacy(scope, receive, send)
            except Exception:
                failed()
                raise
        elif status.state is RouteState.V2 and route.adapter is not None and self.v2 is not None:
            await self._adapted(route, params, scope, receive, send, v2_root, observation)
        elif status.state is RouteState.RETIRED:
            if isinstance(observation, Observation):
                observation.served_by = SERVED_BY_GATEWAY
            link = [] if announced or successor is None else [_successor_link(successor)]
            await send_error(
                send,
                self._errors,
                path="",
                status=410,
                code="gone",
                message="This route is retired."
                + ("" if successor is None else f" Its successor is {successor}."),
                headers=link,
                close=False,
            )
        elif (
            status.state is RouteState.SHADOW
            and self.shadow is not None
            and self.v2 is not None
            and route.legacy_method.upper() == "GET"
            and self.shadow.wanted(scope["method"], status.share)
        ):
            # Taken before the legacy app runs: the mount may change the scope it is given.
            shadow_scope = {**scope, V2_ROOT_KEY: v2_root}
            send, captured = capture(send)
            await self.legacy(scope, receive, send)
            self.shadow.submit(
                route, params, shadow_scope, captured, v2=self.v2, primary=self.legacy
            )
        else:
            await self.legacy(scope, receive, send)

    async def _adapted(
        self,
        route: LedgerRoute,
        params: dict[str, Any],
        scope: Scope,
        receive: Receive,
        send: Send,
        v2_root: str,
        observation: object,
    ) -> None:
        """The legacy request answered by v2 through the route's adapter."""
        assert route.adapter is not None and self.v2 is not None
        if isinstance(observation, Observation):
            observation.served_by = SERVED_BY_V2
        scope[V2_ROOT_KEY] = v2_root
        if scope["method"] == "HEAD" and route.legacy_method.upper() == "GET":
            scope, send = {**scope, "method": "GET"}, _without_body(send)
        await route.adapter(scope, receive, send, params=params, v2=self.v2)


def _successor_link(url: str) -> tuple[bytes, bytes]:
    return b"link", f'<{url}>; rel="successor-version"'.encode("latin-1")


def _announcement(
    route: LedgerRoute, status: RouteStatus, successor: str | None
) -> list[tuple[bytes, bytes]]:
    """The headers of an announced route (none when it is not announced)."""
    if status.deprecation is None and status.sunset is None:
        return []
    headers = []
    if status.deprecation is not None:
        seconds = int(status.deprecation.timestamp())
        headers.append((b"deprecation", f"@{seconds}".encode()))
    if status.sunset is not None:
        sunset = format_datetime(status.sunset.astimezone(UTC), usegmt=True)
        headers.append((b"sunset", sunset.encode()))
    if successor is not None:
        headers.append(_successor_link(successor))
    if route.deprecation_docs is not None:
        link = f'<{route.deprecation_docs}>; rel="deprecation"; type="text/html"'
        headers.append((b"link", link.encode("latin-1")))
    return headers


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return send_with_headers


def _without_body(send: Send) -> Send:
    """The answer to a GET, sent as the answer to HEAD: its headers, no body."""

    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_head
