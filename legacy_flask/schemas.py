"""Marshmallow schemas: what the legacy API accepts and the JSON it answers with.

The legacy API has always been lenient where the contract says so: money may be a JSON
number as well as a string, and unknown keys are ignored. Integers in a body must be JSON
integers, and in a query string ASCII digits. Bad input still gets a 400 that names the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from flask import request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range, Regexp
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from shop_core.emails import MAX_EMAIL_LENGTH, check_email
from shop_core.inventory import MAX_ORDER_ITEMS, MAX_QUANTITY
from shop_core.models import MAX_ID, Tier
from shop_core.money import format_cents, parse_money
from shop_core.timestamps import format_timestamp

MAX_PER_PAGE = 100

# `\Z`, not `$`: `$` also matches before a trailing newline.
_SKU = r"[A-Z0-9-]{1,32}\Z"
_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+\Z"
_INVALID_MONEY = "Must be an amount with at most 2 decimals, like 12.50."
# An integer in a URL, as v2 reads one: ASCII digits, a `-` at most (a range says the rest).
_QUERY_INTEGER = re.compile(r"-?[0-9]+")


class Money(fields.Field[int]):
    """Integer cents inside, `"12.50"` outside; a JSON number is accepted on input."""

    def _serialize(self, value: int | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else format_cents(value)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError(_INVALID_MONEY)
        # str() of a float parsed from JSON gives back its shortest text: 19.99 -> "19.99".
        text = value if isinstance(value, str) else str(value)
        try:
            cents = parse_money(text)
        except ValueError as exc:
            raise ValidationError(_INVALID_MONEY) from exc
        if cents <= 0:
            raise ValidationError("Must be greater than 0.")
        return cents


class QueryInteger(fields.Integer):
    """An integer in the query string, written in ASCII digits.

    `int()`, and so marshmallow's Integer, also reads `1_0`, `+5`, `" 5"` and the digits of
    other scripts (`٣` is 3): a client that sends those has sent no number, and v2 says so.
    """

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        if not isinstance(value, str) or not _QUERY_INTEGER.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Timestamp(fields.Field[datetime]):
    """ISO-8601 UTC with a `Z`, the same text on both stacks."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else format_timestamp(value)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _no_nul(value: str) -> None:
    # PostgreSQL text cannot hold NUL: refused here, the answer is the same on every database.
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")


def _valid_email(value: str) -> None:
    # The rules both stacks share: no invisible format characters, a key that fits.
    try:
        check_email(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _name() -> fields.String:
    return fields.String(required=True, validate=[Length(min=1, max=200), _not_blank, _no_nul])


class LenientSchema(Schema):
    class Meta:
        unknown = EXCLUDE


class LoginSchema(LenientSchema):
    username = fields.String(required=True)
    password = fields.String(required=True)


class ProductSchema(LenientSchema):
    id = fields.Integer(dump_only=True)
    sku = fields.String(required=True, validate=Regexp(_SKU, error="Must be 1-32 of A-Z, 0-9, -."))
    name = _name()
    price = Money(required=True, attribute="price_cents")
    stock = fields.Integer(strict=True, required=True, validate=Range(min=0, max=MAX_ID))
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


_TIERS = OneOf([tier.value for tier in Tier])


class CustomerSchema(LenientSchema):
    id = fields.Integer(dump_only=True)
    name = _name()
    email = fields.String(
        required=True,
        validate=[
            Length(max=MAX_EMAIL_LENGTH),
            Regexp(_EMAIL, error="Not a valid email address."),
            _no_nul,
            _valid_email,
        ],
    )
    tier = fields.String(load_default=Tier.STANDARD.value, validate=_TIERS)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class CustomerReplaceSchema(CustomerSchema):
    """PUT replaces the whole customer, so the tier has no default there."""

    tier = fields.String(required=True, validate=_TIERS)


class OrderItemSchema(LenientSchema):
    product_id = fields.Integer(strict=True, required=True, validate=Range(min=1, max=MAX_ID))
    quantity = fields.Integer(strict=True, required=True, validate=Range(min=1, max=MAX_QUANTITY))
    unit_price = Money(dump_only=True, attribute="unit_price_cents")


class OrderSchema(LenientSchema):
    id = fields.Integer(dump_only=True)
    customer_id = fields.Integer(strict=True, required=True, validate=Range(min=1, max=MAX_ID))
    status = fields.String(dump_only=True)
    items = fields.List(
        fields.Nested(OrderItemSchema),
        required=True,
        validate=Length(min=1, max=MAX_ORDER_ITEMS),
    )
    total = Money(dump_only=True, attribute="total_cents")
    created_at = Timestamp(dump_only=True)

    @validates_schema
    def _distinct_products(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Runs only once every field is valid (skip_on_field_errors).
        seen: set[int] = set()
        for item in data["items"]:
            if item["product_id"] in seen:
                message = f"Product {item['product_id']} appears more than once."
                raise ValidationError(message, field_name="items")
            seen.add(item["product_id"])


class PageSchema(LenientSchema):
    page = QueryInteger(load_default=1, validate=Range(min=1, max=MAX_ID))
    per_page = QueryInteger(load_default=20, validate=Range(min=1, max=MAX_PER_PAGE))


class ProductQuerySchema(PageSchema):
    q = fields.String(load_default=None, validate=_no_nul)


class CustomerQuerySchema(PageSchema):
    email = fields.String(load_default=None, validate=_no_nul)


class OrderQuerySchema(PageSchema):
    customer_id = QueryInteger(load_default=None, validate=Range(min=1, max=MAX_ID))


class QuoteQuerySchema(LenientSchema):
    order_id = QueryInteger(required=True)


def _check_streamed_size() -> None:
    # Werkzeug stops reading a body without Content-Length (chunked) at MAX_CONTENT_LENGTH
    # and returns the truncated part as if it were all: anything left means too large.
    limit = request.max_content_length
    if limit is None or request.content_length is not None:
        return
    if len(request.get_data()) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def load_body(schema: Schema) -> dict[str, Any]:
    """The request's JSON object, validated by `schema`."""
    if not request.is_json:
        raise BadRequest("The body must be JSON (Content-Type: application/json).")
    _check_streamed_size()
    try:
        data = request.get_json(silent=True)
        # Python's json accepts lone surrogates ("\ud800"), which no database can store.
        json.dumps(data, ensure_ascii=False).encode()
    except (RecursionError, UnicodeEncodeError):
        data = None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a valid JSON object.")
    result: dict[str, Any] = schema.load(data)
    return result


def load_args(schema: Schema) -> dict[str, Any]:
    """The query string, validated by `schema`."""
    result: dict[str, Any] = schema.load(request.args.to_dict())
    return result


def dump(schema: Schema, obj: object) -> dict[str, Any]:
    """One resource as the API shows it."""
    result: dict[str, Any] = schema.dump(obj)
    return result


def page_of(
    schema: Schema, rows: Sequence[object], *, key: str, args: Mapping[str, Any], total: int
) -> dict[str, Any]:
    """A legacy list answer: `{"<plural>": [...], "page", "per_page", "total"}`."""
    return {
        key: [schema.dump(row) for row in rows],
        "page": args["page"],
        "per_page": args["per_page"],
        "total": total,
    }
