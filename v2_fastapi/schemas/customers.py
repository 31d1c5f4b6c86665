"""Customers: create, replace (PUT), partial update (PATCH), public representation."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import MISSING, AfterValidator, Field, Strict

from shop_core.emails import FORMAT_CHARACTER_CLASS, MAX_EMAIL_LENGTH, check_email
from shop_core.models import Customer, Tier
from shop_core.timestamps import format_timestamp
from v2_fastapi.schemas.common import SPACE, Name, Representation, StrictModel, Timestamp

# Neither blank, NUL, nor an invisible format character (Unicode category Cf: zero-width
# space, right-to-left override...), which the document lists for its readers.
_EMAIL_PART = rf"[^@\x00{SPACE}{FORMAT_CHARACTER_CLASS}]+"
Email = Annotated[
    str,
    Field(
        max_length=MAX_EMAIL_LENGTH,
        pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$",
        description="Kept as written; unique in any case or compatibility form (NFKC)",
        examples=["ada@example.com"],
    ),
    # The rules the legacy stack applies too, with the same Unicode tables.
    AfterValidator(check_email),
]
# JSON has no enum type: strict mode would accept only `Tier` instances, never the string.
TierName = Annotated[Tier, Strict(False)]


class CustomerReplace(StrictModel):
    """A whole customer: the body of PUT."""

    name: Name
    email: Email
    tier: TierName


class CustomerCreate(CustomerReplace):
    """A new customer: the tier may be left out."""

    tier: TierName = Tier.STANDARD


class CustomerUpdate(StrictModel):
    """Any subset of a customer's fields; `null` is not a value."""

    name: Name | MISSING = MISSING
    email: Email | MISSING = MISSING
    tier: TierName | MISSING = MISSING


class CustomerPublic(Representation):
    id: int
    name: str
    email: str
    tier: TierName
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Customer) -> Self:
        return cls(
            id=row.id,
            name=row.name,
            email=row.email,
            tier=Tier(row.tier),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class CustomersPublic(StrictModel):
    items: list[CustomerPublic]
    total: int
    limit: int
    offset: int


def customer_document(row: Any) -> dict[str, Any]:
    """The JSON object of `CustomerPublic` for a row, built without the model (for reads)."""
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "tier": Tier(row.tier).value,
        "created_at": format_timestamp(row.created_at),
        "updated_at": format_timestamp(row.updated_at),
    }
