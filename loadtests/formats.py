"""The number formats every report shares."""

from __future__ import annotations


def num(value: float | None, digits: int = 0) -> str:
    """The one number format of the reports: thousands separated, `-` for no value."""
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"
