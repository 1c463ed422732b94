"""Coupon templates and what a coupon is worth on a basket (pure). CPN-1, CPN-3.

`price` answers, for one coupon and one basket, either the discount (and on which lines) or a
refusal with a reason code a till can show: expired, not_today, min_spend_not_met,
channel_not_allowed …
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from omo.shared.money import CENT, floor_to_unit, to_unit
from omo.shared.schemas import MoneyIn, StrictModel, within_years
from omo.shared.zones import checked_zone

Kind = Literal[
    "amount_off", "percent_off", "spend_get_off", "free_item", "free_shipping", "nth_item"
]
State = Literal["usable", "used", "expired", "not_yet_valid", "void"]


class CouponTemplate(StrictModel):
    """What a coupon gives, where and when. E.g. 滿500減100: kind spend_get_off, spend 500,
    amount 100; 9 折 on 美妝保養: percent_off 10, categories [美妝保養]."""

    name: str = Field(min_length=1, max_length=80)
    kind: Kind
    amount: MoneyIn | None = Field(default=None, description="amount_off, spend_get_off")
    percent: Decimal | None = Field(
        default=None, gt=0, le=100,
        description="percent_off; nth_item: what every min_items-th unit takes off",
    )  # fmt: skip
    max_discount: MoneyIn | None = Field(
        default=None,
        description="cap for percent_off, nth_item and a repeating spend_get_off (最高折300)",
    )
    spend: MoneyIn | None = Field(default=None, description="spend_get_off: spend this…")
    repeat: bool = Field(
        default=False, description="spend_get_off: take amount off for every spend its lines "
        "reach (每滿1000減100: 2,400 takes 200)",
    )  # fmt: skip
    steps: list[tuple[MoneyIn, MoneyIn]] | None = Field(
        default=None, min_length=1, max_length=10,
        description="spend_get_off: higher thresholds and what each takes, above spend and "
        "amount (階梯滿額: spend 1000, amount 100, steps [[2000, 250], [3000, 400]]); the "
        "highest its lines reach applies",
    )  # fmt: skip
    free_sku: str | None = Field(default=None, max_length=64, description="free_item")
    min_spend: MoneyIn = Field(default=Decimal(0), description="eligible lines must reach it")
    min_items: int | None = Field(
        default=None, ge=2, le=1000,
        description="eligible units must number at least this (任選3件9折: 3; 滿2件折100: 2)",
    )  # fmt: skip
    valid_from: datetime | None = Field(default=None, description="without an offset: UTC")
    valid_until: datetime | None = Field(default=None, description="without an offset: UTC")
    valid_days: int | None = Field(
        default=None, ge=1, le=3650, description="each coupon valid this long from its issue"
    )
    valid_to_month_end: bool = Field(
        default=False, description="each coupon valid until the end of the month it is issued "
        "in, told in `timezone` (當月有效: a birthday coupon, a monthly gift); with valid_days "
        "or valid_until, whichever ends first",
    )  # fmt: skip
    channels: list[str] | None = None
    stores: list[str] | None = None
    categories: list[str] | None = None
    excluded_categories: list[str] | None = Field(
        default=None, max_length=100,
        description="lines of these neither count toward it nor take its discount "
        "(全館9折，禮券與菸酒除外)",
    )  # fmt: skip
    per_member_limit: int = Field(default=1, ge=1, le=1000, description="issued per member")
    max_issued: int | None = Field(default=None, ge=1, description="budget: coupons in total")
    max_redemptions: int | None = Field(default=None, ge=1, description="budget: uses in total")
    shared_code: bool = Field(default=False, description="one public code many members use")
    claimable: bool = Field(
        default=False, description="members claim it themselves (領券中心): offered to each "
        "member who may still claim one, until claim_until, while the budget lasts",
    )  # fmt: skip
    claim_until: datetime | None = Field(
        default=None, description="claimable: the last moment to claim one; none: while the "
        "template is active and before its valid_until. Without an offset: UTC",
    )  # fmt: skip
    combinable: bool = Field(
        default=True, description="false: not used with any other coupon in one order "
        "(不得與其他優惠券併用)",
    )  # fmt: skip
    per_order_limit: int = Field(
        default=1, ge=1, le=100, description="coupons of this template used in one order"
    )
    restore_on_refund: bool = True
    min_level: str | None = Field(
        default=None, min_length=1, max_length=32,
        description="tier level code: members at that level and above only (金卡以上專屬); a "
        "guest is refused",
    )  # fmt: skip
    first_order_only: bool = Field(
        default=False, description="only on a member's first order, in any channel (首購禮); "
        "a guest is refused",
    )  # fmt: skip
    with_level_price: bool = Field(
        default=True, description="false: an order that uses it pays the catalogue price, not "
        "the member's level price (不得與會員折扣併用)",
    )  # fmt: skip
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] | None = Field(
        default=None, min_length=1, max_length=7,
        description="only on these days of the week, 1 Monday … 7 Sunday (週末限定: [6, 7])",
    )  # fmt: skip
    hours: tuple[time, time] | None = Field(
        default=None,
        description="only from the first time of day until the second (下午茶 [\"14:00\", "
        "\"17:00\"]); a second before the first runs past midnight",
    )  # fmt: skip
    timezone: str = Field(default="Asia/Taipei", description="where weekdays and hours are told")

    @property
    def asks_of_member(self) -> bool:
        """Whether using it needs to know the member's level or orders (`Holder`)."""
        return self.min_level is not None or self.first_order_only

    @field_validator("valid_from", "valid_until", "claim_until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """A moment without an offset is UTC, as the coupons issued from it always stored it
        (it was compared with aware moments and failed)."""
        if value is None:
            return None
        within_years(value)  # the moment as given is kept, its offset too
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    @model_validator(mode="after")
    def _complete(self) -> CouponTemplate:
        needs = {
            "amount_off": ("amount",),
            "percent_off": ("percent",),
            "spend_get_off": ("amount", "spend"),
            "free_item": ("free_sku",),
            "free_shipping": (),
            "nth_item": ("percent", "min_items"),  # 第二件6折: percent 40, min_items 2
        }[self.kind]
        for name in needs:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: required for {self.kind} coupons")
        spend_get = self.kind == "spend_get_off" and self.amount is not None and self.spend
        if spend_get and self.amount >= self.spend:  # type: ignore[operator]
            raise ValueError("amount: must be less than spend (滿500減100)")
        if self.claimable and self.shared_code:
            raise ValueError("claimable: a shared code is public already, there is none to claim")
        if self.claim_until is not None and not self.claimable:
            raise ValueError("claim_until: only for claimable coupons")
        if self.repeat and self.kind != "spend_get_off":
            raise ValueError("repeat: only for spend_get_off coupons (每滿1000減100)")
        if self.steps is not None:
            self._ladder_checked()
        if self.repeat and self.max_discount is not None and self.max_discount < self.amount:  # type: ignore[operator]
            raise ValueError("max_discount: at least amount, which one step takes")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until: must be after valid_from")
        if set(self.categories or ()) & set(self.excluded_categories or ()):
            raise ValueError("excluded_categories: a category both included and excluded")
        if self.hours is not None and self.hours[0] == self.hours[1]:
            raise ValueError("hours: the two times must differ")
        checked_zone(self.timezone)
        return self

    def _ladder_checked(self) -> None:
        if self.kind != "spend_get_off" or self.repeat:
            raise ValueError("steps: only for spend_get_off coupons that do not repeat")
        lower = (self.spend, self.amount)
        for spend, amount in self.steps or ():
            if spend <= lower[0] or amount <= lower[1]:  # type: ignore[operator]
                raise ValueError("steps: each must ask more than the one before and take more")
            if amount >= spend:
                raise ValueError("steps: each amount must be less than its spend")
            lower = (spend, amount)

    @property
    def ladder(self) -> tuple[tuple[Decimal, Decimal], ...]:
        """spend_get_off: each threshold and what it takes, lowest first (one, or its steps)."""
        if self.spend is None or self.amount is None:
            return ()
        return ((self.spend, self.amount), *(self.steps or ()))

    def ends_for(self, issued: datetime) -> datetime | None:
        """When a coupon issued at `issued` stops being valid: the first of valid_until,
        valid_days after issue and the month's end; none: never."""
        ends = [self.valid_until] if self.valid_until is not None else []
        if self.valid_days is not None:
            ends.append(issued + timedelta(days=self.valid_days))
        if self.valid_to_month_end:
            local = issued.astimezone(ZoneInfo(self.timezone))
            year, month = divmod(local.year * 12 + local.month, 12)  # the month after
            ends.append(datetime(year, month + 1, 1, tzinfo=local.tzinfo).astimezone(UTC))
        return min(ends, default=None)

    def covers(self, category: str | None) -> bool:
        """Whether a line of this category counts toward the coupon and takes its discount."""
        if self.categories is not None and category not in self.categories:
            return False
        return not (self.excluded_categories and category in self.excluded_categories)


@dataclass(frozen=True)
class BasketLine:
    sku: str
    category: str | None
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal(0)

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity - self.discount


@dataclass(frozen=True)
class Basket:
    channel: str
    store: str | None
    lines: tuple[BasketLine, ...]
    shipping_fee: Decimal = Decimal(0)
    unit: Decimal = CENT  # what a coupon takes is a whole number of it (Settings.price_unit)


@dataclass(frozen=True)
class Holder:
    """What a template's member conditions ask of the member using it: read only for a
    template that has them (`asks_of_member`)."""

    level: str  # the member's tier level code
    reaches: frozenset[str]  # the level codes at or below it: the min_levels it meets
    earlier_orders: bool  # whether the member has a counted order before this one


@dataclass(frozen=True)
class CouponState:
    member_id: int | None  # None: a shared code
    valid_from: datetime | None
    valid_until: datetime | None
    uses: int
    max_uses: int
    status: str  # active | void


def state(c: CouponState, now: datetime) -> State:
    """Whether the coupon can be used now, whatever the basket: what a member card or a till
    lists as the member's coupons."""
    if c.status != "active":
        return "void"
    if c.uses >= c.max_uses:
        return "used"
    if c.valid_from and now < c.valid_from:
        return "not_yet_valid"
    if c.valid_until and now >= c.valid_until:
        return "expired"
    return "usable"


@dataclass(frozen=True)
class Priced:
    discount: Decimal
    shipping_discount: Decimal
    free_sku: str | None
    eligible: Decimal
    # the lines it comes off: its categories' (None: every line) but the excluded, or the
    # free item's
    categories: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = ()
    # a coupon that takes more on more (每滿, 階梯): spending the first more on its lines
    # takes the second in all
    next_step: tuple[Decimal, Decimal] | None = None


@dataclass(frozen=True)
class Refused:
    reason: str
    message: str  # English; a message made of values has them in ctx (see shared/errors.py)
    ctx: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class InOrder:
    """A coupon already applied to the order, as the next one's stacking rules see it."""

    template: str  # its template's code
    combinable: bool
    with_level_price: bool = True  # false: the order is priced without the level's discount


def stacking(
    t: CouponTemplate, template: str, applied: Sequence[InOrder], basket: Basket | None = None
) -> Refused | None:
    """Whether a coupon of template `t` (code `template`) may join the coupons already applied
    to the order, in the order the till gave them: the first one that stands stays. A second
    任選3件 coupon in one order (per_order_limit 2) asks for 6 of the goods of the `basket`."""
    if applied and not t.combinable:
        return Refused("not_combinable", "this coupon is not used with other coupons")
    if any(not a.combinable for a in applied):
        return Refused("not_combinable", "a coupon already applied is not used with others")
    if sum(1 for a in applied if a.template == template) >= t.per_order_limit:
        return Refused(
            "per_order_limit",
            f"at most {t.per_order_limit} of these coupons in one order",
            {"limit": t.per_order_limit},
        )
    same = sum(1 for a in applied if a.template == template)
    if t.min_items is not None and same and basket is not None:
        need = (same + 1) * t.min_items
        units = sum(li.quantity for li in basket.lines if t.covers(li.category))
        if units < need:
            return Refused("min_items_not_met",
                           f"buy at least {need} qualifying items ({units} now)",
                           {"min_items": need, "items": units})  # fmt: skip
    return None


def nth_units(lines: Sequence[BasketLine], n: int) -> Decimal:
    """第二件N折: what the units a nth_item coupon takes its percent off come to — of the units
    covered, each as the basket prices it, the dearest first, every n-th (the cheapest of each
    n). Counted line by line, not unit by unit (a line may hold 100,000)."""
    total, seen = Decimal(0), 0
    for li in sorted(lines, key=lambda li: li.amount / li.quantity, reverse=True):
        nth = (seen + li.quantity) // n - seen // n  # the n-th units among this line's
        total += li.amount / li.quantity * nth
        seen += li.quantity
    return total


def open_at(t: CouponTemplate, now: datetime) -> bool:
    """Whether its days of the week and hours of the day take it now."""
    return _off_hours(t, now) is None


def _off_hours(t: CouponTemplate, now: datetime) -> Refused | None:
    """Whether now, where the template tells days and hours, falls outside them."""
    local = now.astimezone(ZoneInfo(t.timezone))
    if t.weekdays is not None and local.isoweekday() not in t.weekdays:
        days = ", ".join(str(d) for d in sorted(t.weekdays))
        return Refused("not_today", f"only on days {days} of the week (1 is Monday)",
                       {"weekdays": days})  # fmt: skip
    if t.hours is not None:
        start, end = t.hours
        at = local.time().replace(tzinfo=None)
        inside = start <= at < end if start < end else (at >= start or at < end)
        if not inside:
            starts, ends = f"{start:%H:%M}", f"{end:%H:%M}"
            return Refused("outside_hours", f"only from {starts} until {ends}",
                           {"starts": starts, "ends": ends})  # fmt: skip
    return None


def _holder_refusal(t: CouponTemplate, h: Holder | None) -> Refused | None:
    if h is None:
        return Refused("members_only", "for members only")
    if t.min_level is not None and t.min_level not in h.reaches:
        return Refused(
            "tier_too_low", f"for {t.min_level} and above ({h.level} now)",
            {"level": t.min_level, "now": h.level},
        )  # fmt: skip
    if t.first_order_only and h.earlier_orders:
        return Refused("not_first_order", "only on a member's first order")
    return None


def _spend_steps(
    t: CouponTemplate, eligible: Decimal
) -> tuple[Decimal, tuple[Decimal, Decimal] | None]:  # fmt: skip
    """What a spend coupon its lines reach takes off, and its next step: what more they must
    reach for it to take more, and what it then takes (none: it takes all it can)."""
    assert t.amount is not None and t.spend is not None
    if not t.repeat:
        off = max(amount for spend, amount in t.ladder if eligible >= spend)
        above = [(spend, amount) for spend, amount in t.ladder if spend > eligible]
        return off, ((above[0][0] - eligible).quantize(CENT), above[0][1]) if above else None
    times = int(eligible // t.spend)
    off, more = t.amount * times, t.amount * (times + 1)
    if t.max_discount is not None:
        if off >= t.max_discount:
            return t.max_discount, None
        more = min(more, t.max_discount)
    return off, ((t.spend * (times + 1) - eligible).quantize(CENT), more)


def price(
    t: CouponTemplate, c: CouponState, basket: Basket, *, member_id: int | None, now: datetime,
    redemptions_left: int | None, holder: Holder | None = None,
) -> Priced | Refused:  # fmt: skip
    """What the coupon takes off this basket now, or why it cannot be used. `holder`: the
    member, for a template that asks of them (None: a guest)."""
    now_state = state(c, now)
    if now_state == "void":
        return Refused("void", "this coupon was withdrawn")
    if now_state == "used":
        return Refused("already_used", "this coupon has been used")
    if c.member_id is not None and c.member_id != member_id:
        return Refused("wrong_member", "this coupon belongs to another member")
    if now_state == "not_yet_valid":
        assert c.valid_from is not None
        when = c.valid_from.isoformat()
        return Refused("not_yet_valid", f"valid from {when}", {"valid_from": when})
    if now_state == "expired":
        assert c.valid_until is not None
        when = c.valid_until.isoformat()
        return Refused("expired", f"expired at {when}", {"valid_until": when})
    if (t.weekdays or t.hours) and (refused := _off_hours(t, now)) is not None:
        return refused
    if redemptions_left is not None and redemptions_left <= 0:
        return Refused("budget_exhausted", "this offer has run out")
    if t.asks_of_member and (refused := _holder_refusal(t, holder)) is not None:
        return refused
    if t.channels is not None and basket.channel not in t.channels:
        return Refused(
            "channel_not_allowed", f"not valid on {basket.channel}", {"channel": basket.channel}
        )
    if t.stores is not None and basket.store not in t.stores:
        return Refused("store_not_allowed", "not valid in this store")
    lines = [li for li in basket.lines if t.covers(li.category)]
    eligible = sum((li.amount for li in lines), Decimal(0))
    on = (tuple(t.categories) if t.categories is not None else None,
          tuple(t.excluded_categories or ()))  # fmt: skip
    if t.kind != "free_shipping" and not lines:
        return Refused("no_eligible_items", "nothing in the basket qualifies")
    if eligible < t.min_spend:
        short = (t.min_spend - eligible).quantize(CENT)
        return Refused(
            "min_spend_not_met",
            f"spend at least {t.min_spend} on qualifying items ({short} more)",
            {"min_spend": str(t.min_spend), "short": str(short)},
        )
    if t.min_items is not None and (units := sum(li.quantity for li in lines)) < t.min_items:
        return Refused(
            "min_items_not_met", f"buy at least {t.min_items} qualifying items ({units} now)",
            {"min_items": t.min_items, "items": units},
        )  # fmt: skip
    if t.kind == "amount_off":
        assert t.amount is not None
        return Priced(min(t.amount, floor_to_unit(eligible, basket.unit)), Decimal(0), None,
                      eligible, *on)  # fmt: skip
    if t.kind == "spend_get_off":
        assert t.amount is not None and t.spend is not None
        if eligible < t.spend:
            short = (t.spend - eligible).quantize(CENT)
            return Refused(
                "min_spend_not_met",
                f"spend {t.spend} to take {t.amount} off ({short} more)",
                {"spend": str(t.spend), "amount": str(t.amount), "short": str(short)},
            )
        off, step = _spend_steps(t, eligible)  # under eligible: amount < spend
        return Priced(off, Decimal(0), None, eligible, *on, next_step=step)
    if t.kind == "percent_off":
        assert t.percent is not None
        off = min(to_unit(eligible * t.percent / 100, basket.unit),
                  floor_to_unit(eligible, basket.unit))  # fmt: skip
        if t.max_discount is not None:
            off = min(off, t.max_discount)
        return Priced(off, Decimal(0), None, eligible, *on)
    if t.kind == "nth_item":
        assert t.percent is not None and t.min_items is not None
        off = to_unit(nth_units(lines, t.min_items) * t.percent / 100, basket.unit)
        if t.max_discount is not None:
            off = min(off, t.max_discount)
        return Priced(off, Decimal(0), None, eligible, *on)
    if t.kind == "free_item":
        item = next((li for li in lines if li.sku == t.free_sku), None)
        if item is None:
            return Refused(
                "free_item_missing",
                f"add {t.free_sku} to the basket to get it free",
                {"sku": t.free_sku},
            )
        # one unit as the basket prices it (after the level's discount and earlier coupons):
        # its list price would take the rest off the other goods
        one = min(to_unit(item.amount / item.quantity, basket.unit),
                  floor_to_unit(item.amount, basket.unit))  # fmt: skip
        return Priced(max(one, Decimal(0)), Decimal(0), t.free_sku, eligible, *on)
    if basket.shipping_fee <= 0:
        return Refused("no_shipping", "nothing to take off: this order ships free")
    return Priced(Decimal(0), basket.shipping_fee, None, eligible, *on)
