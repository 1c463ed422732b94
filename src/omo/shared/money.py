"""Money is Decimal with two places, never float."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from omo.shared.errors import ValidationFailed

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# What one order may come to (its lines at their prices, and its shipping): far above any
# sale, and low enough that the sums of a store's or a member's orders stay within the 64-bit
# cents money is kept in — two orders at the largest price and quantity a line takes overflowed
# them. An order's discounts and total are bounded by it, not by a unit price's bound.
MAX_ORDER = Decimal("10000000000")


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


def within_an_order(
    lines: Iterable[tuple[int, Decimal]], shipping_fee: Decimal, *, field: str
) -> None:
    """A basket one order can record — or a coupon be priced and used on: its lines
    (quantity, unit price) at their prices and its shipping come to at most MAX_ORDER (each
    line alone may come to more). Else `order_too_large` on `field`."""
    gross = sum((price * quantity for quantity, price in lines), shipping_fee)
    if gross > MAX_ORDER:
        raise ValidationFailed(
            f"the basket comes to {gross}, more than one order may ({MAX_ORDER})",
            field=field, code="order_too_large",
            ctx={"amount": str(gross), "max_order": str(MAX_ORDER)},
        )  # fmt: skip
