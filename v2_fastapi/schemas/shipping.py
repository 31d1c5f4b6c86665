"""Shipping quotes: the carrier's answer as we accept it, and the quote we return."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from v2_fastapi.schemas.common import Money, StrictModel

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]


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
