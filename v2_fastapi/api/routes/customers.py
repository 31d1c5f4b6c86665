"""Customers: the `read` scope to look, `write` to change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from v2_fastapi.conditional import IfMatch, IfNoneMatch, json_answer_unless_current, tagged
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
from v2_fastapi.schemas.common import NUL_FREE
from v2_fastapi.schemas.customers import (
    CustomerCreate,
    CustomerPublic,
    CustomerReplace,
    CustomersPublic,
    CustomerUpdate,
    customer_document,
)
from v2_fastapi.services import customers

router = APIRouter(
    prefix="/customers",
    tags=["customers"],
    responses=problem_responses(401, 403, 422, 503),
    route_class=JSONBodyRoute,
)

CustomerId = Annotated[int, Path(description="The customer's id"), InUrl]
_read = [require_scope("read")]
_write = [require_scope("write")]


@router.get("", dependencies=_read)
async def list_customers(
    session: SessionDep,
    limit: Limit = 20,
    offset: Offset = 0,
    email: Annotated[
        str | None,
        Query(
            pattern=NUL_FREE,
            description="This email, in any case or compatibility form (NFKC)",
        ),
    ] = None,
) -> CustomersPublic:
    """List customers by id, optionally the one with `email`."""
    rows, total = await customers.list_customers(session, email=email, limit=limit, offset=offset)
    items = [CustomerPublic.from_row(row) for row in rows]
    return CustomersPublic(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{customer_id}",
    dependencies=_read,
    response_model=CustomerPublic,
    responses={**TAGGED, **NOT_MODIFIED, **problem_responses(404)},
)
async def read_customer(
    conn: ConnectionDep, customer_id: CustomerId, if_none_match: IfNoneMatch
) -> Response:
    """Get one customer, with its ETag."""
    # JSON built from the row; `response_model` is what the OpenAPI document shows.
    row = await customers.read_customer(conn, customer_id=customer_id)
    return json_answer_unless_current(customer_document(row), if_none_match)


@router.post(
    "",
    status_code=201,
    dependencies=_write,
    responses={**CREATED, **problem_responses(409, 413)},
)
async def create_customer(
    session: SessionDep, body: CustomerCreate, request: Request, response: Response
) -> CustomerPublic:
    """Add a customer; the email must be new (in any case)."""
    customer = await customers.create_customer(session, data=body)
    response.headers["Location"] = resource_path(request, "read_customer", customer_id=customer.id)
    return tagged(CustomerPublic.from_row(customer), response)


_CHANGED = {**TAGGED, **problem_responses(404, 409, 412, 413)}


@router.put("/{customer_id}", dependencies=_write, responses=_CHANGED)
async def replace_customer(
    session: SessionDep,
    customer_id: CustomerId,
    body: CustomerReplace,
    response: Response,
    if_match: IfMatch,
) -> CustomerPublic:
    """Replace every field of a customer (send If-Match with the ETag read)."""
    customer = await customers.update_customer(
        session, customer_id=customer_id, data=body, if_match=if_match
    )
    return tagged(CustomerPublic.from_row(customer), response)


@router.patch("/{customer_id}", dependencies=_write, responses=_CHANGED)
async def update_customer(
    session: SessionDep,
    customer_id: CustomerId,
    body: CustomerUpdate,
    response: Response,
    if_match: IfMatch,
) -> CustomerPublic:
    """Change the fields given, leave the others."""
    customer = await customers.update_customer(
        session, customer_id=customer_id, data=body, if_match=if_match
    )
    return tagged(CustomerPublic.from_row(customer), response)


@router.delete(
    "/{customer_id}",
    status_code=204,
    dependencies=_write,
    responses=problem_responses(404, 409, 412),
)
async def delete_customer(session: SessionDep, customer_id: CustomerId, if_match: IfMatch) -> None:
    """Delete a customer who has no orders."""
    await customers.delete_customer(session, customer_id=customer_id, if_match=if_match)
