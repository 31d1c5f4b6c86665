"""v2 requests handed straight to the v2 app (gateway/mount_dispatch.py): the same answers
as through the gateway's router, with every layer of the gateway still on them."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from gateway.app import create_gateway
from gateway.mount_dispatch import MountDispatch, mount_dispatch
from gateway.pair import AppPair
from gateway.settings import GatewaySettings


def _v2() -> FastAPI:
    v2 = FastAPI()

    @v2.get("/items/{item_id}", name="item")
    async def item(item_id: int, request: Request) -> dict[str, Any]:
        # What an app reads of where it is mounted: its root path, its own URL, its links.
        return {
            "item_id": item_id,
            "root_path": request.scope["root_path"],
            "url": str(request.url),
            "link": str(request.url_for("item", item_id=item_id + 1)),
        }

    return v2


def _gateway(*, dispatch: bool) -> Any:
    gateway = create_gateway(GatewaySettings(max_body_bytes=1024), AppPair(v2=_v2()))
    if not dispatch:
        gateway.v2 = None  # the router's way: what the dispatch must not change
    return gateway


def _get(gateway: Any, path: str, **kwargs: Any) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(kwargs.pop("method", "GET"), path, **kwargs)

    return asyncio.run(call())


def _dispatch_in(gateway: Any) -> bool:
    """Whether the built middleware stack holds a `MountDispatch`."""
    layer = gateway.middleware_stack
    while layer is not None:
        if isinstance(layer, MountDispatch):
            return True
        layer = getattr(layer, "app", None)
    return False


@pytest.mark.parametrize(
    "path",
    ["/v2/items/7?x=1", "/v2/items/seven", "/v2/nowhere", "/v2", "/v2/", "/v2x/items/7"],
)
def test_the_answers_are_the_routers(path: str) -> None:
    direct, routed = _gateway(dispatch=True), _gateway(dispatch=False)
    answer, expected = _get(direct, path), _get(routed, path)
    assert _dispatch_in(direct) and not _dispatch_in(routed)
    assert answer.status_code == expected.status_code
    assert answer.content == expected.content
    request_id = "x-request-id"
    assert {k: v for k, v in answer.headers.items() if k != request_id} == {
        k: v for k, v in expected.headers.items() if k != request_id
    }


def test_the_app_sees_where_it_is_mounted() -> None:
    answer = _get(_gateway(dispatch=True), "/v2/items/7")
    assert answer.status_code == 200
    assert answer.json() == {
        "item_id": 7,
        "root_path": "/v2",
        "url": "http://gateway/v2/items/7",
        "link": "http://gateway/v2/items/8",
    }


def test_the_gateways_layers_still_wrap_a_v2_request() -> None:
    gateway = _gateway(dispatch=True)
    answer = _get(gateway, "/v2/items/7", headers={"X-Request-ID": "dispatch-test-1"})
    assert answer.headers["x-request-id"] == "dispatch-test-1"
    assert answer.headers["x-content-type-options"] == "nosniff"
    # Counted under the v2 route's template, as through the router.
    metrics = _get(gateway, "/metrics")
    assert 'route="/items/{item_id}",served_by="v2",stack="v2",status="200"' in metrics.text
    # The body limit is the gateway's, in the side's error format.
    too_large = _get(gateway, "/v2/items/7", method="POST", content=b"x" * 1025)
    assert too_large.status_code == 413
    assert too_large.headers["content-type"] == "application/problem+json"


def _mounted(*routes: Any, app: Any) -> list[Any]:
    return [*routes, Mount("/v2", app=app)]


def test_the_dispatch_stays_out_where_the_router_could_answer_differently() -> None:
    v2 = _v2()
    handlers = {Exception: object()}
    assert mount_dispatch(_mounted(app=v2), v2, handlers, router=None) is not None
    # A route the router tries first could take a path under the prefix.
    for route in (
        Route("/v2/own", endpoint=lambda request: None),
        Route("/{anything}/own", endpoint=lambda request: None),
        Mount("/v2/static", app=Starlette()),
    ):
        assert mount_dispatch(_mounted(route, app=v2), v2, handlers, router=None) is None
    # A route that cannot: the landing page, another prefix.
    for route in (
        Route("/", endpoint=lambda request: None),
        Route("/v2x", endpoint=lambda request: None),
        Mount("/legacy", app=Starlette()),
    ):
        assert mount_dispatch(_mounted(route, app=v2), v2, handlers, router=None) is not None

    # An app that may raise HTTPException for the gateway's handler to answer.
    async def plain_asgi(scope: Any, receive: Any, send: Any) -> None: ...

    assert mount_dispatch(_mounted(app=plain_asgi), plain_asgi, handlers, router=None) is None
    # A gateway handler for an error the v2 app does not handle itself.
    own = {**handlers, LookupError: object()}
    assert mount_dispatch(_mounted(app=v2), v2, own, router=None) is None
    # Mounted at the root, the mount would only be reached after every other route.
    root = [Mount("", app=v2)]
    assert mount_dispatch(root, v2, handlers, router=None) is None
