"""The product catalogue: public to read, the `admin` scope to change."""

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
from v2_fastapi.schemas.products import (
    ProductCreate,
    ProductPublic,
    ProductsPublic,
    ProductUpdate,
    product_document,
)
from v2_fastapi.services import products

router = APIRouter(
    prefix="/products",
    tags=["products"],
    responses=problem_responses(422, 503),
    route_class=JSONBodyRoute,
)

ProductId = Annotated[int, Path(description="The product's id"), InUrl]
_admin = [require_scope("admin")]


# Reads answer with JSON built from the rows; `response_model` is what the document shows.
@router.get("", response_model=ProductsPublic)
async def list_products(
    db: DatabaseDep,
    limit: Limit = 20,
    offset: Offset = 0,
    q: Annotated[
        str | None, Query(pattern=NUL_FREE, description="Name or sku contains this (any case)")
    ] = None,
) -> Response:
    """List products by id, optionally those whose name or sku contains `q`."""
    rows, total = await db.read(products.list_products, q=q, limit=limit, offset=offset)
    items = [product_document(row) for row in rows]
    return list_answer(items, total=total, limit=limit, offset=offset)


@router.get(
    "/{product_id}",
    response_model=ProductPublic,
    responses={**TAGGED, **NOT_MODIFIED, **problem_responses(404)},
)
async def read_product(
    db: DatabaseDep, product_id: ProductId, if_none_match: IfNoneMatch
) -> Response:
    """Get one product, with its ETag."""
    row = await db.read(products.read_product, product_id=product_id)
    return json_answer_unless_current(product_document(row), if_none_match)


@router.post(
    "",
    status_code=201,
    dependencies=_admin,
    responses={**CREATED, **problem_responses(401, 403, 409, 413)},
)
async def create_product(
    db: DatabaseDep, body: ProductCreate, request: Request, response: Response
) -> ProductPublic:
    """Add a product; its sku must be new."""
    product = await db.write(products.create_product, data=body)
    response.headers["Location"] = resource_path(request, "read_product", product_id=product.id)
    return tagged(ProductPublic.from_row(product), response)


_CHANGED = {**TAGGED, **problem_responses(401, 403, 404, 409, 412, 413)}


@router.put("/{product_id}", dependencies=_admin, responses=_CHANGED)
async def replace_product(
    db: DatabaseDep,
    product_id: ProductId,
    body: ProductCreate,
    response: Response,
    if_match: IfMatch,
) -> ProductPublic:
    """Replace every field of a product, stock included.

    Send If-Match with the ETag read: otherwise an order placed since the read has its
    stock overwritten by the stock sent.
    """
    product = await db.write(
        products.update_product, product_id=product_id, data=body, if_match=if_match
    )
    return tagged(ProductPublic.from_row(product), response)


@router.patch("/{product_id}", dependencies=_admin, responses=_CHANGED)
async def update_product(
    db: DatabaseDep,
    product_id: ProductId,
    body: ProductUpdate,
    response: Response,
    if_match: IfMatch,
) -> ProductPublic:
    """Change the fields given, leave the others (a price change leaves stock as it is)."""
    product = await db.write(
        products.update_product, product_id=product_id, data=body, if_match=if_match
    )
    return tagged(ProductPublic.from_row(product), response)


@router.delete(
    "/{product_id}",
    status_code=204,
    dependencies=_admin,
    responses=problem_responses(401, 403, 404, 409, 412),
)
async def delete_product(db: DatabaseDep, product_id: ProductId, if_match: IfMatch) -> None:
    """Delete a product that no order refers to."""
    await db.write(products.delete_product, product_id=product_id, if_match=if_match)
