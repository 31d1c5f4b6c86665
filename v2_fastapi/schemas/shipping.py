"""Shipping quotes: the carrier's answer as we accept it, and the quote we return."""

from __future__ import annotations

from typing import Annotated, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from v2_fastapi.schemas.common import Money, StrictModel

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]


class RateItem(TypedDict):
    product_id: int
    quantity: int
    unit_price: str  # money, as `OrderItemPublic` writes it


class RateRequest(TypedDict):
    """What the carrier is asked to rate: the order's id, items and total, as the order's
    representation (`OrderPublic`) writes them."""

    order_id: int
    items: list[RateItem]
    total: str


class CarrierRate(BaseModel):
    """A rate as the carrier service answers it; keys we do not use are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    carrier: Annotated[str, Field(min_length=1)]
    amount: Money
    currency: Currency
    eta_days: Annotated[int, Field(ge=0)]


class ShippingQuote(StrictModel):
    order_id: int
    carrier: str
    amount: Money
    currency: Currency
    eta_days: int
