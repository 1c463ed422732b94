"""What each line of an order was paid (pure): its price after the level's discount, less the
share of each coupon that applied to it, less its share of the rest of the order's discount
(points paid with, or a discount a channel sent without its coupon). A return gives back what
the units returned were paid: a free item comes back for nothing, a coupon on 美妝保養 comes
off the 美妝保養 lines only. CHK-3."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Line:
    line_no: int
    sku: str
    category: str | None
    line_total: Decimal  # after the level's discount


@dataclass(frozen=True)
class CouponUse:
    discount: Decimal
    free_sku: str | None  # a free item's coupon: off that item alone
    categories: Sequence[str] | None  # a coupon on some categories: off those lines


def paid(
    lines: Sequence[Line], *, discount_total: Decimal, coupons: Sequence[CouponUse]
) -> dict[int, Decimal]:
    """Each line's paid value, unrounded: never below zero, and they sum to the goods less
    `discount_total` (at most the goods). Coupons in the order they were used, each over what
    its lines have left; a coupon whose lines are not in the order, or have less left than it
    took, is spread with the rest."""
    left = {li.line_no: li.line_total for li in lines}
    placed = Decimal(0)
    for c in coupons:
        eligible = [li.line_no for li in lines if _applies(c, li)]
        base = sum((left[n] for n in eligible), Decimal(0))
        if c.discount <= 0 or base < c.discount or placed + c.discount > discount_total:
            continue
        for n in eligible:
            left[n] -= c.discount * left[n] / base
        placed += c.discount
    rest = discount_total - placed
    pool = sum(left.values(), Decimal(0))
    if pool <= 0:
        return {n: Decimal(0) for n in left}
    return {n: v - rest * v / pool for n, v in left.items()}


def _applies(c: CouponUse, li: Line) -> bool:
    if c.free_sku is not None:
        return li.sku == c.free_sku
    return c.categories is None or li.category in c.categories
