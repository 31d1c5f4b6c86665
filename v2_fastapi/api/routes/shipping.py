"""Shipping quotes, asked of the carrier service for an order."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from shop_core.money import format_cents, parse_money
from v2_fastapi.deps import CarrierDep, DatabaseDep, InUrl, require_scope
from v2_fastapi.openapi import problem_responses
from v2_fastapi.schemas.shipping import ShippingQuote
from v2_fastapi.services import orders

router = APIRouter(prefix="/shipping", tags=["shipping"])


@router.get(
    "/quote",
    dependencies=[require_scope("read")],
    responses=problem_responses(
        401,
        403,
        404,
        422,
        502,
        503,
        504,
        descriptions={
            502: "The carrier service failed, also when tried again, or gave an invalid answer",
            503: "The carrier service's quota is used up for now (the gateway keeps to it, or "
            "the carrier answered 429), or the database is unavailable; see Retry-After",
        },
        retry_after=(503,),
    ),
)
async def quote(
    db: DatabaseDep,
    carrier: CarrierDep,
    order_id: Annotated[int, Query(description="The order to ship"), InUrl],
) -> ShippingQuote:
    """Ask the carrier service what shipping the order costs."""
    # The connection is back in the pool before the carrier is asked.
    order = await db.read(orders.read_rate_request, order_id=order_id)
    rate = await carrier.quote(order)
    return ShippingQuote(
        order_id=order_id,
        carrier=rate.carrier,
        amount=format_cents(parse_money(rate.amount)),  # "7.5" -> "7.50", as money always is
        currency=rate.currency,
        eta_days=rate.eta_days,
    )
