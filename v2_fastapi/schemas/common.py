"""The field types every resource shares, and the strict base model.

Requests are validated in strict mode: an id or a quantity must be a JSON integer
(`"5"`, `5.0` and `true` are rejected) and money must be a string. Responses use
the same types so that the OpenAPI document shows the constraints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from shop_core.etags import etag_of
from shop_core.models import MAX_ID
from shop_core.money import MONEY_PATTERN, parse_money
from shop_core.timestamps import format_timestamp


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Representation(StrictModel):
    """A single resource as the API answers it: its entity tag is that JSON object's."""

    def etag(self) -> str:
        # mode="json": the object as sent (money and timestamps as their strings), which is
        # also what legacy answers for the same row, so the tag is the same on both stacks.
        return etag_of(self.model_dump(mode="json"))


def _positive(amount: str) -> str:
    if parse_money(amount) <= 0:
        raise ValueError("must be greater than 0")
    return amount


DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
Money = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["12.50"])]
# Money's pattern with zero amounts ruled out, for the OpenAPI document: Pydantic's regex
# engine has no look-ahead, so `_positive` is what enforces it on input.
POSITIVE_MONEY_PATTERN = r"^(?!0*(\.0*)?$)[0-9]{1,9}(\.[0-9]{1,2})?$"
Price = Annotated[
    Money,
    AfterValidator(_positive),
    Field(
        description="Greater than 0, at most two decimals",
        json_schema_extra={"pattern": POSITIVE_MONEY_PATTERN},
    ),
]
# Whitespace as every reader of a pattern takes it: `\s` is Unicode's in Pydantic's engine
# (with U+0085, without U+FEFF) and ECMAScript's for readers of the OpenAPI document (the
# other way round). Naming both makes a pattern mean the same thing to all of them.
SPACE = r"\s\x85\uFEFF"
# PostgreSQL text cannot hold NUL: no string the API stores or looks up may contain one.
NUL_FREE = r"^[^\x00]*$"
Name = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=rf"^[^\x00]*[^{SPACE}\x00][^\x00]*$"),
]
# Both stacks format timestamps with the shared helper, so one row gives the same bytes.
Timestamp = Annotated[
    datetime,
    PlainSerializer(format_timestamp, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2026-01-31T12:00:00.000000Z"]}
    ),
]
