"""What each line of an order was paid (pure): its price after the level's discount, less the
share of each coupon that applied to it, less its share of the points paid with (placed after
the coupons, on the lines points pay for: `points_use`), less its share of the rest of the
order's discount (a discount a channel sent without its coupon). A return gives back what
the units returned were paid: a free item comes back for nothing, a coupon on 美妝保養 comes
off the 美妝保養 lines only. CHK-3.

`due` answers what the units a customer keeps cost when the store claws back a coupon whose
threshold (滿X) what is kept no longer reaches, or the part of one of steps (每滿X, 階梯) or of
groups of units (第二件N折) it no longer reaches: the returns policy's `coupon_threshold`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Line:
    line_no: int
    sku: str
    category: str | None
    line_total: Decimal  # after the level's discount
    quantity: int = 1


@dataclass(frozen=True)
class CouponUse:
    discount: Decimal
    free_sku: str | None  # a free item's coupon: off that item alone
    categories: Sequence[str] | None  # a coupon on some categories: off those lines
    threshold: Decimal = Decimal(0)  # what its lines had to reach (滿X); 0: none
    excluded: Sequence[str] = ()  # categories it neither counts nor comes off (禮券除外)
    min_items: int = 0  # the units its lines had to number (任選3件); 0: none
    every: Decimal = Decimal(0)  # it took `each` off for every this much its lines reached
    each: Decimal = Decimal(0)  # (每滿1000減100: every 1000, each 100); 0: once
    ladder: tuple[tuple[Decimal, Decimal], ...] = ()  # thresholds and what each took (階梯)
    per_group: bool = False  # it took its discount for every min_items units (第二件N折)

    @property
    def conditional(self) -> bool:
        """Whether a return can leave what is kept short of what it asked (a threshold)."""
        return self.threshold > 0 or self.min_items > 0


def points_use(value: Decimal, excluded: Sequence[str]) -> CouponUse:
    """The points an order was paid with, placed after its coupons as a coupon on every line
    but those of the categories points do not pay for, in proportion to what each has left."""
    return CouponUse(value, None, None, excluded=tuple(excluded))


@dataclass(frozen=True)
class Due:
    amount: Decimal  # what the units kept cost, unrounded
    missed: tuple[int, ...]  # the coupons (by their place in the order's list) clawed back,
    # in whole or (one of steps, thresholds or groups of units) in part


def paid(
    lines: Sequence[Line], *, discount_total: Decimal, coupons: Sequence[CouponUse]
) -> dict[int, Decimal]:
    """Each line's paid value, unrounded: never below zero, and they sum to the goods less
    `discount_total` (at most the goods). Coupons in the order they were used, each over what
    its lines have left; a coupon whose lines are not in the order is spread with the rest, and
    one whose lines have less left than it took (by the cents pricing rounds to) takes all they
    have and spreads the rest."""
    return _spread(lines, discount_total, coupons, kept=None)[0]


def due(
    lines: Sequence[Line], *, kept: Mapping[int, Decimal], discount_total: Decimal,
    coupons: Sequence[CouponUse],
) -> Due:  # fmt: skip
    """What the share `kept` of each line (0…1, by line number) costs when every coupon with a
    threshold that the kept part of its lines no longer reaches is taken back: those lines are
    then paid as if it had never applied (one of steps, thresholds or groups: as if it took only
    what the kept part reaches). The kept part is measured as the coupon saw its
    lines, after the level's discount and the coupons used before it. A coupon none of whose
    discounted lines is kept is not taken back (a free item returned: its discount went with
    it).
    The points paid with, and the rest of the order's discount, stay placed as `paid` places
    them."""
    worth, missed = _spread(lines, discount_total, coupons, kept=kept)
    amount = sum((worth[li.line_no] * kept.get(li.line_no, Decimal(0)) for li in lines), Decimal(0))
    return Due(amount, missed)


def _spread(
    lines: Sequence[Line], discount_total: Decimal, coupons: Sequence[CouponUse],
    kept: Mapping[int, Decimal] | None,
) -> tuple[dict[int, Decimal], tuple[int, ...]]:  # fmt: skip
    left = {li.line_no: li.line_total for li in lines}
    placed, missed = Decimal(0), []
    for i, c in enumerate(coupons):
        eligible = [li for li in lines if _applies(c, li)]
        base = sum((left[li.line_no] for li in eligible), Decimal(0))
        if c.discount <= 0 or base <= 0 or placed + c.discount > discount_total:
            continue
        if kept is not None and (deserved := _deserved(c, lines, left, kept)) < c.discount:
            on = sum((left[li.line_no] * kept.get(li.line_no, Decimal(0)) for li in eligible),
                     Decimal(0))  # fmt: skip
            # clawed back: all of it, or what the kept part had of it beyond the steps it
            # still reaches (which then come off the kept part alone, as if bought alone)
            if deserved < c.discount * on / base:
                missed.append(i)
                discount_total -= c.discount - deserved
                for li in eligible if deserved > 0 else ():
                    if kept.get(li.line_no, Decimal(0)) > 0:
                        left[li.line_no] -= deserved * left[li.line_no] / on
                placed += deserved
                continue
        # all of it, or all its lines have left (a rounding cent over: the rest spreads it)
        take = min(c.discount, base)
        for li in eligible:
            left[li.line_no] -= take * left[li.line_no] / base
        placed += take
    rest = discount_total - placed
    pool = sum(left.values(), Decimal(0))
    if pool <= 0:
        return {n: Decimal(0) for n in left}, tuple(missed)
    return {n: v - rest * v / pool for n, v in left.items()}, tuple(missed)


def _deserved(
    c: CouponUse, lines: Sequence[Line], left: Mapping[int, Decimal],
    kept: Mapping[int, Decimal],
) -> Decimal:  # fmt: skip
    """What the coupon is still worth on what is kept of its lines, as it saw them: all of its
    discount, nothing when the kept part falls short of its threshold or of its number of
    units (pricing measures a free item's threshold over all the lines of its categories, the
    free item included), or for a repeating one the steps the kept part still reaches, or for
    one of thresholds (階梯滿額) what the highest it still reaches takes, or for one of every
    n-th unit (第二件N折) its share for the groups of n kept."""
    if not c.conditional:
        return c.discount
    if not any(kept.get(li.line_no, Decimal(0)) > 0 for li in lines if _applies(c, li)):
        return c.discount  # none of what it took off is kept: its discount went back with them
    covered = [(li, kept.get(li.line_no, Decimal(0))) for li in lines if _covers(c, li)]
    reached = sum((left[li.line_no] * k for li, k in covered), Decimal(0))
    units = sum((li.quantity * k for li, k in covered), Decimal(0))
    if reached < c.threshold or units < c.min_items:
        return Decimal(0)
    if c.every > 0:
        return min(c.discount, c.each * int(reached // c.every))
    if c.ladder:
        return min(c.discount, max((a for s, a in c.ladder if reached >= s), default=Decimal(0)))
    if c.per_group:  # the groups of min_items units kept, of those the sale had
        groups = sum(li.quantity for li, _ in covered) // c.min_items
        return min(c.discount, c.discount * int(units // c.min_items) / groups)
    return c.discount


def lines_of(c: CouponUse, lines: Sequence[Line]) -> list[int]:
    """The line numbers a coupon came off: the free item's, or its categories' (every line)."""
    return [li.line_no for li in lines if _applies(c, li)]


def _applies(c: CouponUse, li: Line) -> bool:
    if c.free_sku is not None:
        return li.sku == c.free_sku and _covers(c, li)
    return _covers(c, li)


def _covers(c: CouponUse, li: Line) -> bool:
    """Whether the line counts toward the coupon's threshold (its categories, less those it
    excludes)."""
    if c.categories is not None and li.category not in c.categories:
        return False
    return li.category is None or li.category not in c.excluded
