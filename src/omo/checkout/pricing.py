"""The price of a basket for a member (pure). CHK-1.

In this order: the tier's discount on every line (but those of the categories the programme
excludes from it, such as gift cards, and, if it says so, those marked down at the till); then
each coupon on what is left (a coupon that no longer applies after an earlier one is refused
with its reason): a coupon comes off its own lines (its categories' but those it excludes, or
the free item), so a coupon on 美妝保養 does not lower what a 服飾 coupon after it sees; then
points, capped by the programme's share of the lines points pay for (not those of the
categories it keeps out, such as gift cards) and the member's balance; then shipping
less what coupons waive, and what is left of it waived by the tier's monthly free shipping when
the member has a shipment left (coupons first: the customer chose them). Points to earn are
worked out on what the member finally pays for each line (`worth`): the coupons placed as
checkout/paid.py places them, which is also how a return weighs the lines.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from omo.checkout import paid
from omo.coupons import rules as coupon_rules
from omo.coupons.rules import Basket, BasketLine
from omo.points.rules import (
    PointsRules,
    below_minimum,
    max_redeemable,
    off_step,
    redeem_value,
    step_in,
)
from omo.shared.errors import ValidationFailed
from omo.shared.money import CENT, to_unit


@dataclass(frozen=True)
class PricedLine:
    sku: str
    category: str | None
    quantity: int
    unit_price: Decimal
    tier_discount: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity - self.tier_discount


@dataclass
class CouponOutcome:
    code: str
    discount: Decimal = Decimal(0)
    shipping_discount: Decimal = Decimal(0)
    reason: str | None = None
    message: str | None = None
    ctx: Mapping[str, Any] = field(default_factory=dict)
    free_sku: str | None = None  # a free item's: off that line alone
    categories: tuple[str, ...] | None = None  # off the lines of these (None: every line)
    excluded: tuple[str, ...] = ()  # but not off these
    next_step: tuple[Decimal, Decimal] | None = None  # spend this more on its lines: takes that

    @property
    def applied(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class Note:
    """Why a quote is not what was asked: a code, its English sentence and its values."""

    reason: str
    message: str
    ctx: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Price:
    lines: list[PricedLine]
    coupons: list[CouponOutcome] = field(default_factory=list)
    points: int = 0
    points_value: Decimal = Decimal(0)
    points_cap: int = 0
    points_excluded: tuple[str, ...] = ()  # categories points do not pay for
    shipping_fee: Decimal = Decimal(0)
    shipping_discount: Decimal = Decimal(0)  # coupons'
    tier_shipping_discount: Decimal = Decimal(0)  # the tier's monthly free shipping
    unit: Decimal = CENT  # the discounts are whole numbers of it (Settings.price_unit)

    @property
    def subtotal(self) -> Decimal:
        return sum((li.unit_price * li.quantity for li in self.lines), Decimal(0))

    @property
    def tier_discount(self) -> Decimal:
        return sum((li.tier_discount for li in self.lines), Decimal(0))

    @property
    def coupon_discount(self) -> Decimal:
        return sum((c.discount for c in self.coupons if c.applied), Decimal(0))

    @property
    def goods(self) -> Decimal:
        """What is paid for goods: after tier, coupons and points."""
        return self.subtotal - self.tier_discount - self.coupon_discount - self.points_value

    @property
    def shipping(self) -> Decimal:
        return self.shipping_fee - self.shipping_discount - self.tier_shipping_discount

    @property
    def total(self) -> Decimal:
        return self.goods + self.shipping


def tier_lines(
    lines: list[BasketLine], discount_rate: Decimal, excludes: Collection[str] = (),
    full_price: Collection[int] = (), unit: Decimal = CENT, per_unit: bool = False,
) -> list[PricedLine]:  # fmt: skip
    """The tier's price multiplier per line, its discount rounded half up to the `unit` per
    line, or with `per_unit` per unit (each unit's member price whole, the line that times its
    quantity); lines of the `excludes` categories, and those at the `full_price` places, keep
    their price."""
    out = []
    for n, li in enumerate(lines):
        gross = li.unit_price * li.quantity
        if n in full_price or (li.category is not None and li.category in excludes):
            off = Decimal(0)
        elif per_unit:
            off = to_unit(li.unit_price * (1 - discount_rate), unit) * li.quantity
        else:
            off = to_unit(gross * (1 - discount_rate), unit)
        out.append(PricedLine(li.sku, li.category, li.quantity, li.unit_price, off))
    return out


def worth(price: Price, *, with_points: bool) -> list[Decimal]:
    """What each line comes to, unrounded: after the level's discount and the coupons applied,
    each off its own lines (checkout/paid.py), and `with_points` less its share (in proportion
    to what is left, over the lines points pay for) of the points paid with."""
    lines = [paid.Line(n, li.sku, li.category, li.amount) for n, li in enumerate(price.lines)]
    uses = [paid.CouponUse(c.discount, c.free_sku, c.categories, excluded=c.excluded)
            for c in price.coupons if c.applied]  # fmt: skip
    taken = price.coupon_discount
    if with_points and price.points_value:
        uses.append(paid.points_use(price.points_value, price.points_excluded))
        taken += price.points_value
    placed = paid.paid(lines, discount_total=taken, coupons=uses)
    return [placed[n] for n in range(len(lines))]


def points_room(price: Price) -> Decimal:
    """What points may pay for: the goods after the level and the coupons, but the lines of
    the categories points do not pay for."""
    if not price.points_excluded:
        return price.subtotal - price.tier_discount - price.coupon_discount
    left = worth(price, with_points=False)
    payable = sum(
        (v for li, v in zip(price.lines, left, strict=True)
         if li.category is None or li.category not in price.points_excluded),
        Decimal(0),
    )  # fmt: skip
    return max(payable, Decimal(0)).quantize(CENT, rounding=ROUND_FLOOR)


def basket_after(price: Price, channel: str, store: str | None) -> Basket:
    """The basket coupons see: tier discounts taken, earlier coupons off their own lines."""
    left = worth(price, with_points=False)
    lines = [
        BasketLine(li.sku, li.category, li.quantity, li.unit_price,
                   li.tier_discount + (li.amount - v).quantize(CENT))
        for li, v in zip(price.lines, left, strict=True)
    ]  # fmt: skip
    return Basket(channel, store, tuple(lines), price.shipping_fee - price.shipping_discount,
                  unit=price.unit)  # fmt: skip


def add_coupon(price: Price, code: str, result: coupon_rules.Priced | coupon_rules.Refused) -> None:
    if isinstance(result, coupon_rules.Refused):
        price.coupons.append(
            CouponOutcome(code, reason=result.reason, message=result.message, ctx=result.ctx)
        )
        return
    room = price.subtotal - price.tier_discount - price.coupon_discount
    discount = min(result.discount, room)
    shipping = min(result.shipping_discount, price.shipping_fee - price.shipping_discount)
    price.coupons.append(
        CouponOutcome(code, discount, shipping, free_sku=result.free_sku,
                      categories=result.categories, excluded=result.excluded,
                      next_step=result.next_step)
    )  # fmt: skip
    price.shipping_discount += shipping


def next_steps(price: Price, notes: list[Note]) -> None:
    """A notice for each coupon applied that would take more on more (每滿, 階梯): what more
    its goods must come to, and what it then takes (再買 NT$480 可折 NT$250)."""
    for c in price.coupons:
        if c.applied and c.next_step is not None:
            short, off = c.next_step
            notes.append(Note("coupon_next_step", f"{c.code}: {short} more on its goods takes "
                              f"{off} off", {"coupon": c.code, "short": str(short),
                                             "off": str(off)}))  # fmt: skip


def waive_shipping(price: Price) -> Decimal:
    """The tier's free shipping: what coupons left of the fee, waived; what that is worth."""
    price.tier_shipping_discount = price.shipping_fee - price.shipping_discount
    return price.tier_shipping_discount


def take_points(
    p: Price, rules: PointsRules, balance: int, wanted: int, *, strict: bool,
    notes: list[Note], channel: str | None = None,
) -> None:  # fmt: skip
    """The points the basket takes: at most the programme's share of the lines points pay for,
    its cap per order and the balance, in whole steps (and in as many as make a whole number
    of the price's unit), none if fewer than one redemption takes, and none on a `channel` or
    beside a coupon where the programme says so. A sale (`strict`) is refused what a quote
    lowers, with a note."""
    rules = step_in(rules, p.unit)
    p.points_excluded = tuple(rules.redeem_excludes)
    p.points_cap = max_redeemable(rules, order_amount=points_room(p), balance=balance)
    if rules.redeem_channels is not None and channel not in rules.redeem_channels:
        p.points_cap = 0
        if wanted and strict:
            raise ValidationFailed(f"points do not pay on {channel}", field="points",
                                   code="points_not_here", ctx={"channel": channel})  # fmt: skip
        if wanted:
            notes.append(Note("points_not_here", f"points do not pay on {channel}",
                              {"channel": channel}))  # fmt: skip
        return
    if not rules.redeem_with_coupons and any(c.applied for c in p.coupons):
        p.points_cap = 0
        if wanted and strict:
            raise ValidationFailed("points are not used with a coupon", field="points",
                                   code="points_not_with_coupons")  # fmt: skip
        if wanted:
            notes.append(Note("points_not_with_coupons", "points are not used with a coupon"))
        return
    if not wanted:
        return
    if (below := below_minimum(rules, wanted)) is not None:
        if strict:
            raise below
        notes.append(_below(rules))
        return
    if wanted > p.points_cap:
        if strict:
            raise ValidationFailed(
                f"at most {p.points_cap} points on this basket (balance {balance})",
                field="points", code="points_over_cap",
                ctx={"cap": p.points_cap, "balance": balance},
            )  # fmt: skip
        notes.append(Note("points_lowered_to_cap",
                          f"points lowered from {wanted} to the cap {p.points_cap}",
                          {"wanted": wanted, "cap": p.points_cap}))  # fmt: skip
    if (off := off_step(rules, wanted)) is not None:
        if strict:
            raise off
        if wanted <= p.points_cap:
            notes.append(Note("points_lowered_to_step",
                              f"points lowered to a multiple of {rules.redeem_step}",
                              {"step": rules.redeem_step}))  # fmt: skip
    p.points = min(wanted - wanted % rules.redeem_step, p.points_cap)
    if p.points and below_minimum(rules, p.points) is not None:  # a step under it
        notes.append(_below(rules))
        p.points = 0
    p.points_value = redeem_value(rules, p.points)


def _below(rules: PointsRules) -> Note:
    return Note("points_below_minimum", f"at least {rules.min_redeem} points per redemption",
                {"min_redeem": rules.min_redeem})  # fmt: skip
