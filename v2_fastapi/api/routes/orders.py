"""Orders: the `read` scope to look, `write` to place and cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from v2_fastapi.conditional import (
    IfNoneMatch,
    json_answer_unless_current,
    list_answer,
    tagged,
)
from v2_fastapi.deps import (
    DatabaseDep,
    InUrl,
    Limit,
    Offset,
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


@router.get("", dependencies=_read, response_model=OrdersPublic)
async def list_orders(
    db: DatabaseDep,
    limit: Limit = 20,
    offset: Offset = 0,
    customer_id: Annotated[
        DbId | None, Query(description="Only this customer's orders"), InUrl
    ] = None,
) -> Response:
    """List orders by id, optionally one customer's."""
    # JSON built from the rows; `response_model` is what the OpenAPI document shows.
    page, total = await db.read(
        orders.list_orders, customer_id=customer_id, limit=limit, offset=offset
    )
    items = [order_document(row, order_items) for row, order_items in page]
    return list_answer(items, total=total, limit=limit, offset=offset)


@router.get(
    "/{order_id}",
    dependencies=_read,
    response_model=OrderPublic,
    responses={**TAGGED, **NOT_MODIFIED, **problem_responses(404)},
)
async def read_order(db: DatabaseDep, order_id: OrderId, if_none_match: IfNoneMatch) -> Response:
    """Get one order with its items, and its ETag."""
    # JSON built from the rows; `response_model` is what the OpenAPI document shows.
    row, items = await db.read(orders.read_order, order_id=order_id)
    return json_answer_unless_current(order_document(row, items), if_none_match)


@router.post(
    "",
    status_code=201,
    dependencies=_write,
    responses={**CREATED, **problem_responses(409, 413)},
)
async def place_order(
    db: DatabaseDep, body: OrderCreate, request: Request, response: Response
) -> OrderPublic:
    """Place an order: every item's stock is taken, at today's price, or nothing changes."""
    order = await db.write(orders.place_order, data=body)
    response.headers["Location"] = resource_path(request, "read_order", order_id=order.id)
    return tagged(OrderPublic.from_row(order), response)


@router.post(
    "/{order_id}/cancel",
    dependencies=_write,
    responses={**TAGGED, **problem_responses(404, 409)},
)
async def cancel_order(db: DatabaseDep, order_id: OrderId, response: Response) -> OrderPublic:
    """Cancel a placed order and give its stock back."""
    order = await db.write(orders.cancel_order, order_id=order_id)
    return tagged(OrderPublic.from_row(order), response)
