"""Amounts of money as text: one exact spelling for machines, one for people.

Shared by budgets (`monitor.core.budget`) and prices (`monitor.core.prices`); amounts
are Decimals in US dollars everywhere.
"""

from __future__ import annotations

from decimal import Decimal


def decimal_text(value: Decimal) -> str:
    """`value` exactly, in plain notation without trailing zeros: "2.5", "10", "0.0000025".

    One spelling per number, so texts can be compared and hashed: "2.50" and "2.5" are
    one price. Never exponent notation, which people misread and other tools parse
    differently. Raises ValueError for NaN and infinities.
    """
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number")
    if value.is_zero():
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def money(value: Decimal) -> str:
    """USD for people: at least two decimals, every decimal it has ($2.50, $0.0375)."""
    text = decimal_text(value)
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"
