"""Money travels as a string with two decimals and is stored as integer cents."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

MONEY_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,2})?$"
_MONEY_RE = re.compile(MONEY_PATTERN)


def format_cents(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def parse_money(value: str) -> int:
    """`"12.5"` -> 1250. Raises ValueError for anything that is not a plain amount."""
    if not _MONEY_RE.fullmatch(value):
        raise ValueError("must be an amount like 12.50")
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover, no mutate - the pattern excludes it
        raise ValueError("must be an amount like 12.50") from exc
    return int(amount * 100)
