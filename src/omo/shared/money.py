"""Money is Decimal with two places, never float."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

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


def to_unit(value: Decimal, unit: Decimal = CENT, *, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Rounded to a whole number of `unit` (the smallest amount the tills take: 0.01, or 1
    where a till takes whole dollars), written with the cents."""
    if unit == CENT:  # the default: one quantize, as a sale without a unit always did
        return value.quantize(CENT, rounding=rounding)
    return ((value / unit).quantize(Decimal(1), rounding=rounding) * unit).quantize(CENT)


def floor_to_unit(value: Decimal, unit: Decimal = CENT) -> Decimal:
    """The most whole `unit`s that `value` holds."""
    return to_unit(value, unit, rounding=ROUND_FLOOR)


def off_unit(amounts: Mapping[str, Decimal | None], unit: Decimal) -> tuple[str, Decimal] | None:
    """The first of these amounts a merchant set (a coupon's NT$50.5 off, a reward's cash) that
    is not a whole number of the till's unit, by its field; None when all are."""
    return next(
        ((field, value) for field, value in amounts.items()
         if value is not None and value % unit != 0),
        None,
    )  # fmt: skip
