"""Orders: the `read` scope to look, `write` to place and cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from v2_fastapi.conditional import IfNoneMatch, json_answer_unless_current, tagged
from v2_fastapi.deps import (
    ConnectionDep,
    InUrl,
    Limit,
    Offset,
    SessionDep,
    require_scope,
    resource_path,
)
from v2_fastapi.json_body import JSONBodyRoute
from v2_fastapi.openapi import CREATED, NOT_MODIFIED, TAGGED, problem_responses
from v2_fastapi.schemas.common import DbId
from v2_fastapi.schemas.orders import OrderCreate, OrderPublic, OrdersPublic, order_document
from v2_fastapi.services import orders

router = APIRouter(
    prefix="/orders",
    tags=["orders"],
    responses=problem_responses(401, 403, 422, 503),
    route_class=JSONBodyRoute,
)

OrderId = Annotated[int, Path(description="The order's id"), InUrl]
_read = [require_scope("read")]
_write = [require_scope("write")]


@router.get("", dependencies=_read)
async def list_orders(
    session: SessionDep,
    limit: Limit = 20,
    offset: Offset = 0,
    customer_id: Annotated[
        DbId | None, Query(description="Only this customer's orders"), InUrl
    ] = None,
) -> OrdersPublic:
    """List orders by id, optionally one customer's."""
    rows, total = await orders.list_orders(
        session, customer_id=customer_id, limit=limit, offset=offset
    )
    items = [OrderPublic.from_row(row) for row in rows]
    return OrdersPublic(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{order_id}",
    dependencies=_read,
    response_model=OrderPublic,
    responses={**TAGGED, **NOT_MODIFIED, **problem_responses(404)},
)
async def read_order(
    conn: ConnectionDep, order_id: OrderId, if_none_match: IfNoneMatch
) -> Response:
    """Get one order with its items, and its ETag."""
    # JSON built from the rows; `response_model` is what the OpenAPI document shows.
    row, items = await orders.read_order(conn, order_id=order_id)
    return json_answer_unless_current(order_document(row, items), if_none_match)


@router.post(
    "",
    status_code=201,
    dependencies=_write,
    responses={**CREATED, **problem_responses(409, 413)},
)
async def place_order(
    session: SessionDep, body: OrderCreate, request: Request, response: Response
) -> OrderPublic:
    """Place an order: every item's stock is taken, at today's price, or nothing changes."""
    order = await orders.place_order(session, data=body)
    response.headers["Location"] = resource_path(request, "read_order", order_id=order.id)
    return tagged(OrderPublic.from_row(order), response)


@router.post(
    "/{order_id}/cancel",
    dependencies=_write,
    responses={**TAGGED, **problem_responses(404, 409)},
)
async def cancel_order(session: SessionDep, order_id: OrderId, response: Response) -> OrderPublic:
    """Cancel a placed order and give its stock back."""
    order = await orders.cancel_order(session, order_id=order_id)
    return tagged(OrderPublic.from_row(order), response)
