"""Requests under a mounted app's prefix handed straight to it, past the gateway's router.

The gateway's own layers (request id, metrics, access log, security headers, body
limits, its 500 in the side's error format) wrap every request. Below them sit the
gateway's `ExceptionMiddleware`, its `AsyncExitStackMiddleware` and its router, which
tries its own routes one by one before it reaches the `Mount`: for a request the v2 app
answers (it has all three of its own) they only cost time, about 3 % of the CPU of a
`GET /v2/products/{id}` through the gateway (measured). `MountDispatch` sits just inside
the gateway's own middleware and gives such a request to the mounted app with the scope
the `Mount` would have given it; every other request goes on down the stack as before.

It is only put in where that changes nothing else (`mount_dispatch`): the mounted app is
a Starlette app (it answers its own HTTP errors), no route the router would try first
could take a path under the prefix, and the gateway has no exception handler that a
request the mounted app answers could reach (an `HTTPException` stops in the app, as
does any error the app has a handler for; any other error reaches the server error
middleware, which is above).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

# FastAPI's native telemetry, when a team turns it on, names the route as the router
# passes through the mount: such requests keep taking the router's way.
_TELEMETRY_KEY = "fastapi.telemetry"


class MountDispatch:
    def __init__(self, app: ASGIApp, *, mount: Mount, router: Any) -> None:
        """`app`: the rest of the stack; `mount`: the route whose requests skip it;
        `router`: the gateway's router, left in the scope as its own routing would."""
        self.app = app
        self.mount = mount
        self.router = router
        self._prefix = mount.path + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _TELEMETRY_KEY not in scope:
            root: str = scope.get("root_path", "")
            path: str = scope["path"]
            # A cheap look first; the mount's own match decides (and builds the scope).
            if path.startswith(self._prefix, len(root) if path.startswith(root) else 0):
                match, child_scope = self.mount.matches(scope)
                if match is Match.FULL:
                    if "router" not in scope:
                        scope["router"] = self.router
                    scope.update(child_scope)
                    await self.mount.handle(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _may_take(route: BaseRoute, prefix: str) -> bool:
    """Whether `route` could match some path under `prefix` (a cautious yes when unsure)."""
    path_format = getattr(route, "path_format", None)
    if not isinstance(path_format, str):
        return True
    if "{" not in path_format:
        # A route without parameters matches its one path only.
        return path_format == prefix or path_format.startswith(prefix + "/")
    fixed = path_format.split("{", 1)[0]
    return fixed.startswith(prefix + "/") or (prefix + "/").startswith(fixed)


def mount_dispatch(
    routes: Sequence[BaseRoute],
    mounted: ASGIApp,
    exception_handlers: Mapping[Any, Any],
    router: Any,
) -> Middleware | None:
    """The `MountDispatch` for the mount of `mounted` among `routes`, or None where the
    router's way could answer differently (see the module's docstring)."""
    if not isinstance(mounted, Starlette):
        return None
    # Errors the mounted app answers itself never reach the gateway's handlers.
    handled_inside = {HTTPException, Exception, 500, *mounted.exception_handlers}
    if set(exception_handlers) - handled_inside:
        return None
    found = next(
        (
            index
            for index, route in enumerate(routes)
            if isinstance(route, Mount) and route.app is mounted
        ),
        None,
    )
    if found is None:
        return None
    mount = routes[found]
    assert isinstance(mount, Mount)
    if mount.path == "" or any(_may_take(route, mount.path) for route in routes[:found]):
        return None
    return Middleware(MountDispatch, mount=mount, router=router)
