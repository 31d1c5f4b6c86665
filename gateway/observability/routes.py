"""Which route answered: the template the app matched, never the raw path.

Metrics and access logs are labelled with the route template (`/products/{id}`), so the
number of series stays bounded whatever paths clients send, and no id or query string of
a person lands in a log. Every path no route matched shares `UNMATCHED`.

- FastAPI/Starlette leave the matched route in the ASGI scope (`scope["route"]`, which
  Starlette's own OpenTelemetry middleware reads too); its `path_format` is the template.
  Starlette's router does so for every route, FastAPI's (0.16x) for its own routes
  (`@app.get`, `APIRouter`) only: a plain Starlette `Route` inside a FastAPI app counts as
  unmatched.
- A WSGI app is opaque to the gateway. `WsgiRouteReporter` wraps it and, when the app
  starts its answer, reads the URL rule Flask matched: Werkzeug keeps the request object
  in `environ["werkzeug.request"]` while Flask's request context lasts, and Flask sets
  its `url_rule` (None for a 404 or 405: unmatched). Flask's placeholders are written the
  FastAPI way (`/products/<int:id>` becomes `/products/{id}`), so that one route has one
  name on both stacks. This is duck typing: the gateway imports no Flask.

The WSGI side runs in a pool thread and sees only the environ (a2wsgi puts the ASGI scope
in it as `asgi.scope`). It hands its answer back through the `Observation` object that the
middleware puts in the scope: the same object whatever copies of the scope are made on
the way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any, Final

from a2wsgi.wsgi_typing import Environ, StartResponse, WSGIApp
from starlette.routing import Mount
from starlette.types import Scope

UNMATCHED: Final = "<unmatched>"
SCOPE_KEY: Final = "gateway.observation"
ENVIRON_REQUEST_ID: Final = "gateway.request_id"

# `<name>`, `<int:name>`, `<any(a, b):name>`: everything up to the last colon is converter.
_WERKZEUG_PLACEHOLDER: Final = re.compile(r"<(?:[^<>]*:)?([^<>:]+)>")


class Observation:
    """What the apps tell the gateway about one request, filled in as it is served."""

    __slots__ = ("request_id", "route", "served_by")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        # Set by whoever knows better than the scope: the WSGI reporter, a cut-over adapter.
        self.route: str | None = None
        self.served_by: str | None = None


@functools.lru_cache(maxsize=1024)
def normalise_werkzeug_rule(rule: str) -> str:
    """`/products/<int:id>` -> `/products/{id}`: the placeholder syntax FastAPI uses."""
    return _WERKZEUG_PLACEHOLDER.sub(r"{\1}", rule)


def starlette_route(scope: Scope, stack_root: str) -> str | None:
    """The template of the endpoint Starlette matched, relative to `stack_root`.

    A `Mount` is not an endpoint: a path that reached a mount but no route inside it is
    unmatched, and so is one that reached no route at all.
    """
    route = scope.get("route")
    if route is None or isinstance(route, Mount):
        return None
    path_format = getattr(route, "path_format", None)
    if not isinstance(path_format, str):
        return None
    # root_path grows by each mount on the way in; the stack's own prefix is left out.
    root_path: str = scope.get("root_path", "")
    if root_path.startswith(stack_root):
        root_path = root_path[len(stack_root) :]
    return root_path + path_format


def werkzeug_route(environ: Environ) -> str | None:
    """The rule a Flask app matched for this environ, normalised; None when it matched none."""
    request = environ.get("werkzeug.request")
    rule = getattr(getattr(request, "url_rule", None), "rule", None)
    return normalise_werkzeug_rule(rule) if isinstance(rule, str) else None


class WsgiRouteReporter:
    """WSGI wrapper: gives the app the request id, reports the rule it matched."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        scope: dict[str, Any] = environ.get("asgi.scope", {})  # type: ignore[assignment]
        observation = scope.get(SCOPE_KEY)
        if not isinstance(observation, Observation):
            return self.app(environ, start_response)
        extra: dict[str, Any] = environ  # type: ignore[assignment]
        extra[ENVIRON_REQUEST_ID] = observation.request_id

        def start_response_and_report(*args: Any) -> Any:
            # Flask has routed long before it answers, and answers inside its request
            # context: once that is gone, Flask clears `werkzeug.request`.
            observation.route = werkzeug_route(environ)
            return start_response(*args)

        return self.app(environ, start_response_and_report)
