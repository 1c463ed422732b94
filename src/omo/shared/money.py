"""Money is Decimal with two places, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_money(value: Decimal | int | str) -> Decimal:
    """Quantise to cents with commercial rounding; refuses floats to keep binary error out."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def from_cents(cents: int) -> Decimal:
    """Integer minor units (as the database sums them) back to money."""
    return (Decimal(int(cents)) * CENT).quantize(CENT)
