"""The field types every resource shares, and the strict base model.

Requests are validated in strict mode: an id or a quantity must be a JSON integer
(`"5"`, `5.0` and `true` are rejected) and money must be a string. Responses use
the same types so that the OpenAPI document shows the constraints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from shop_core.money import MONEY_PATTERN, parse_money
from shop_core.timestamps import format_timestamp

# Ids live in 32-bit integer columns: a larger one exists nowhere. The contract caps
# stock at the same value.
MAX_DB_INT = 2_147_483_647


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _positive(amount: str) -> str:
    if parse_money(amount) <= 0:
        raise ValueError("must be greater than 0")
    return amount


DbId = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
Money = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["12.50"])]
Price = Annotated[
    Money, AfterValidator(_positive), Field(description="Greater than 0, at most two decimals")
]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
# Both stacks format timestamps with the shared helper, so one row gives the same bytes.
Timestamp = Annotated[
    datetime,
    PlainSerializer(format_timestamp, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2026-01-31T12:00:00.000000Z"]}
    ),
]
