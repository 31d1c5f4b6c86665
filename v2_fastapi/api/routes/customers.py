"""Customers: the `read` scope to look, `write` to change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from v2_fastapi.conditional import (
    IfMatch,
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


@router.get("", dependencies=_read, response_model=CustomersPublic)
async def list_customers(
    db: DatabaseDep,
    limit: Limit = 20,
    offset: Offset = 0,
    email: Annotated[
        str | None,
        Query(
            pattern=NUL_FREE,
            description="This email, in any case or compatibility form (NFKC)",
        ),
    ] = None,
) -> Response:
    """List customers by id, optionally the one with `email`."""
    # JSON built from the rows; `response_model` is what the OpenAPI document shows.
    rows, total = await db.read(customers.list_customers, email=email, limit=limit, offset=offset)
    items = [customer_document(row) for row in rows]
    return list_answer(items, total=total, limit=limit, offset=offset)


@router.get(
    "/{customer_id}",
    dependencies=_read,
    response_model=CustomerPublic,
    responses={**TAGGED, **NOT_MODIFIED, **problem_responses(404)},
)
async def read_customer(
    db: DatabaseDep, customer_id: CustomerId, if_none_match: IfNoneMatch
) -> Response:
    """Get one customer, with its ETag."""
    # JSON built from the row; `response_model` is what the OpenAPI document shows.
    row = await db.read(customers.read_customer, customer_id=customer_id)
    return json_answer_unless_current(customer_document(row), if_none_match)


@router.post(
    "",
    status_code=201,
    dependencies=_write,
    responses={**CREATED, **problem_responses(409, 413)},
)
async def create_customer(
    db: DatabaseDep, body: CustomerCreate, request: Request, response: Response
) -> CustomerPublic:
    """Add a customer; the email must be new (in any case)."""
    customer = await db.write(customers.create_customer, data=body)
    response.headers["Location"] = resource_path(request, "read_customer", customer_id=customer.id)
    return tagged(CustomerPublic.from_row(customer), response)


_CHANGED = {**TAGGED, **problem_responses(404, 409, 412, 413)}


@router.put("/{customer_id}", dependencies=_write, responses=_CHANGED)
async def replace_customer(
    db: DatabaseDep,
    customer_id: CustomerId,
    body: CustomerReplace,
    response: Response,
    if_match: IfMatch,
) -> CustomerPublic:
    """Replace every field of a customer (send If-Match with the ETag read)."""
    customer = await db.write(
        customers.update_customer, customer_id=customer_id, data=body, if_match=if_match
    )
    return tagged(CustomerPublic.from_row(customer), response)


@router.patch("/{customer_id}", dependencies=_write, responses=_CHANGED)
async def update_customer(
    db: DatabaseDep,
    customer_id: CustomerId,
    body: CustomerUpdate,
    response: Response,
    if_match: IfMatch,
) -> CustomerPublic:
    """Change the fields given, leave the others."""
    customer = await db.write(
        customers.update_customer, customer_id=customer_id, data=body, if_match=if_match
    )
    return tagged(CustomerPublic.from_row(customer), response)


@router.delete(
    "/{customer_id}",
    status_code=204,
    dependencies=_write,
    responses=problem_responses(404, 409, 412),
)
async def delete_customer(db: DatabaseDep, customer_id: CustomerId, if_match: IfMatch) -> None:
    """Delete a customer who has no orders."""
    await db.write(customers.delete_customer, customer_id=customer_id, if_match=if_match)
