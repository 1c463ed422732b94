"""The points programme's rules, and what they give (pure: no database, no clock of its own).

A merchant sets the rules (stored, versioned by the points service); this module answers:
how many points does this order earn and why, when do they become spendable, when do they
expire, and what are N points worth at the till.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from omo.commerce.channels import Channel
from omo.shared.errors import ValidationFailed
from omo.shared.schemas import CategoryName, MoneyIn, StrictModel
from omo.shared.zones import checked_zone

ROUNDING = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "ceiling": ROUND_CEILING}


class Promotion(StrictModel):
    """A points campaign: e.g. double points on Double 11, ×3 on 美妝保養 for a week, or a
    member day that comes back every week or month between its dates (每週三會員日點數加倍)."""

    name: str = Field(min_length=1, max_length=80)
    starts_on: date
    ends_on: date = Field(description="inclusive")
    multiplier: Decimal = Field(default=Decimal(1), gt=0, le=20)
    bonus_points: int = Field(
        default=0, ge=0, le=1_000_000,
        description="滿額贈點: points besides, once per order whose lines the promotion covers "
        "come to min_spend (單筆滿3000送300點); not multiplied by the level or any other",
    )  # fmt: skip
    min_spend: MoneyIn = Field(
        default=Decimal(0), description="with bonus_points: what the covered lines must come to"
    )
    channels: list[str] | None = Field(default=None, description="only these channels")
    categories: list[str] | None = Field(default=None, description="only lines of these")
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] | None = Field(
        default=None, min_length=1, max_length=7,
        description="only on these days of the week, 1 Monday … 7 Sunday, as the programme's "
        "timezone sees the sale (每週三會員日: [3])",
    )  # fmt: skip
    days_of_month: list[Annotated[int, Field(ge=1, le=31)]] | None = Field(
        default=None, min_length=1, max_length=31,
        description="only on these days of the month (每月8日會員日: [8]); a month without "
        "the day has none",
    )  # fmt: skip

    @model_validator(mode="after")
    def _ordered(self) -> Promotion:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on: before starts_on")
        return self


class PointsRules(StrictModel):
    """The programme. Defaults: 1 point per NT$100 spent, floor; 7-day return window; points
    expire 12 months after they are earned; 1 point = NT$1 at the till."""

    spend_per_point: MoneyIn = Field(default=Decimal("100"), gt=0)
    rounding: Literal["floor", "half_up", "ceiling"] = "floor"
    channel_multipliers: dict[str, Decimal] = Field(
        default_factory=lambda: {"shopee": Decimal(0), "momo": Decimal(0)},
        description="channels not listed earn ×1; marketplaces earn nothing by default",
    )
    store_multipliers: dict[str, Decimal] = Field(default_factory=dict)
    category_multipliers: dict[str, Decimal] = Field(default_factory=dict)
    birthday_multiplier: Decimal = Field(
        default=Decimal(1), ge=0, le=20,
        description="× on what a member earns in the month of their birthday (生日當月點數加倍: "
        "2), the month as the programme's timezone sees the sale; 1: none",
    )  # fmt: skip
    promotions: list[Promotion] = Field(default_factory=list, max_length=100)
    return_window_days: int = Field(default=7, ge=0, le=365)
    expiry: Literal["rolling", "month_end", "year_end", "never"] = Field(
        default="rolling",
        description="rolling: expiry_months after the day earned; month_end: at the end of the "
        "month expiry_months after the one earned in (取得後第12個月月底); year_end: at the end "
        "of a year (expiry_years); never",
    )  # fmt: skip
    expiry_months: int = Field(
        default=12, ge=1, le=120, description="for rolling and month_end expiry"
    )
    expiry_years: int = Field(
        default=1, ge=0, le=10, description="for year_end: 0 = end of the year earned"
    )
    point_value: MoneyIn = Field(default=Decimal("1"), gt=0, description="NT$ per point redeemed")
    max_redeem_share: Decimal = Field(
        default=Decimal("0.5"),
        gt=0,
        le=1,
        description="share of an order's goods points may pay (of those points pay for)",
    )
    min_redeem: int = Field(
        default=1, ge=1, le=1_000_000,
        description="the fewest points one redemption takes (滿100點才可折抵: 100)",
    )  # fmt: skip
    max_redeem_points: int | None = Field(
        default=None, ge=1, le=10_000_000,
        description="the most points one order takes (單筆最多折抵500點: 500); none: only "
        "max_redeem_share caps it",
    )  # fmt: skip
    redeem_step: int = Field(
        default=1, ge=1, le=100_000,
        description="points are redeemed in multiples of this (以10點為單位折抵: 10)",
    )  # fmt: skip
    redeem_with_coupons: bool = Field(
        default=True, description="false: an order that uses a coupon takes no points "
        "(點數不得與優惠券併用)",
    )  # fmt: skip
    redeem_channels: list[Channel] | None = Field(
        default=None, min_length=1, max_length=6,
        description="the channels points pay on at checkout (點數僅限門市折抵: [\"pos\"]); "
        "none: every channel. Earning and rewards are not limited by it",
    )  # fmt: skip
    redeem_excludes: list[CategoryName] = Field(
        default_factory=list, max_length=100,
        description="categories points do not pay for (點數不可折抵禮券): the points an order "
        "takes are capped by, and come off, its other lines",
    )  # fmt: skip
    signup_bonus: int = Field(
        default=0, ge=0, le=1_000_000, description="to a member enrolled now (not an import)"
    )
    review_bonus: int = Field(
        default=0, ge=0, le=1_000_000,
        description="for a review (a review event): once per member and product",
    )  # fmt: skip
    review_needs_purchase: bool = Field(
        default=True, description="only for a review of a product the member bought"
    )
    reviews_per_month: int | None = Field(
        default=None, ge=1, le=1000,
        description="review bonuses a member earns at most in a calendar month; none: no cap",
    )  # fmt: skip
    referral_bonus: int = Field(
        default=50, ge=0, le=1_000_000, description="to the member who brought a new one"
    )
    referee_bonus: int | None = Field(
        default=None, ge=0, le=1_000_000, description="to the new member; none: referral_bonus"
    )
    referral_min_order: MoneyIn = Field(
        default=Decimal("300"), ge=0, description="the referee's first order must reach this"
    )
    referral_days: int | None = Field(
        default=None, ge=1, le=3650,
        description="a referral lapses unless its qualifying order comes within these days "
        "of joining; none: it never lapses",
    )  # fmt: skip
    referrals_per_year: int | None = Field(
        default=None, ge=1, le=100_000,
        description="a referrer is rewarded for at most this many referrals a calendar year "
        "(the referee still is); none: no cap",
    )  # fmt: skip
    timezone: str = "Asia/Taipei"

    @model_validator(mode="after")
    def _sane(self) -> PointsRules:
        for name in ("channel_multipliers", "store_multipliers", "category_multipliers"):
            for key, m in getattr(self, name).items():
                if not Decimal(0) <= m <= Decimal(20):
                    raise ValueError(f"{name}: {key} must be between 0 and 20")
        checked_zone(self.timezone)
        return self


@dataclass(frozen=True)
class LineFacts:
    category: str | None
    amount: Decimal  # what the customer paid for the line, after its discounts


@dataclass(frozen=True)
class OrderFacts:
    channel: str
    store: str | None
    ordered_at: datetime
    lines: tuple[LineFacts, ...]
    order_discount: Decimal  # spread over the lines in proportion to their amounts


@dataclass(frozen=True)
class Earning:
    points: int
    base: Decimal  # spend that earns
    explanation: tuple[str, ...]


def points_for_order(
    rules: PointsRules, order: OrderFacts, *, tier_multiplier: Decimal,
    birthday: date | None = None,
) -> Earning:  # fmt: skip
    """Points an order earns: per line, spend ÷ spend_per_point × every multiplier that applies,
    summed, then rounded once (so splitting a basket into lines never loses points).
    `birthday`: the member's, for the programme's birthday-month multiplier."""
    local_day = order.ordered_at.astimezone(ZoneInfo(rules.timezone)).date()
    gross = sum((li.amount for li in order.lines), Decimal(0))
    channel_m = rules.channel_multipliers.get(order.channel, Decimal(1))
    store_m = rules.store_multipliers.get(order.store or "", Decimal(1))
    why: list[str] = []
    birthday_m = Decimal(1)
    if birthday_month(rules, birthday, local_day):
        birthday_m = rules.birthday_multiplier
    if channel_m != 1:
        why.append(f"channel {order.channel} ×{channel_m}")
    if store_m != 1:
        why.append(f"store {order.store} ×{store_m}")
    if tier_multiplier != 1:
        why.append(f"tier ×{tier_multiplier}")
    if birthday_m != 1:
        why.append(f"birthday month ×{birthday_m}")
    total = Decimal(0)
    base = Decimal(0)
    covered = [Decimal(0)] * len(rules.promotions)  # what each promotion's lines come to
    for line in order.lines:
        share = line.amount - (order.order_discount * line.amount / gross if gross else 0)
        m = channel_m * store_m * tier_multiplier * birthday_m
        cat_m = rules.category_multipliers.get(line.category or "", Decimal(1))
        m *= cat_m
        for n, promo in enumerate(rules.promotions):
            if _applies(promo, order.channel, line.category, local_day):
                m *= promo.multiplier
                covered[n] += share
                named = {w.split(" ×")[0] for w in why}
                if promo.multiplier != 1 and promo.name not in named:
                    why.append(f"{promo.name} ×{promo.multiplier}")
        if cat_m != 1 and f"category {line.category} ×{cat_m}" not in why:
            why.append(f"category {line.category} ×{cat_m}")
        base += share
        total += share / rules.spend_per_point * m
    points = int(total.to_integral_value(rounding=ROUNDING[rules.rounding]))
    for promo in _bonuses(rules, covered, earns=channel_m * store_m > 0):
        points += promo.bonus_points
        why.append(f"{promo.name} +{promo.bonus_points}")
    return Earning(max(points, 0), base, tuple(why))


def _bonuses(rules: PointsRules, covered: Sequence[Decimal], *, earns: bool) -> list[Promotion]:
    """The promotions whose spend bonus an order gives, from what the lines each covers come
    to; none where its channel or store earns nothing (a marketplace at ×0)."""
    if not earns:
        return []
    return [promo for promo, reached in zip(rules.promotions, covered, strict=True)
            if promo.bonus_points and reached > 0 and reached >= promo.min_spend]  # fmt: skip


def spend_bonus(
    rules: PointsRules, *, channel: str, store: str | None, ordered_at: datetime,
    lines: Sequence[LineFacts],
) -> int:  # fmt: skip
    """The spend bonuses (滿3000送300點) that lines of these amounts, after the order's
    discount, reach, as points_for_order gives them: a return weighs what is kept by it."""
    if not any(promo.bonus_points for promo in rules.promotions):
        return 0
    day = ordered_at.astimezone(ZoneInfo(rules.timezone)).date()
    covered = [sum((li.amount for li in lines if _applies(promo, channel, li.category, day)),
                   Decimal(0)) for promo in rules.promotions]  # fmt: skip
    earns = (rules.channel_multipliers.get(channel, Decimal(1))
             * rules.store_multipliers.get(store or "", Decimal(1)) > 0)  # fmt: skip
    return sum(promo.bonus_points for promo in _bonuses(rules, covered, earns=earns))


def birthday_month(rules: PointsRules, birthday: date | None, day: date) -> bool:
    """Whether the birthday multiplier applies to a sale on `day` (local) by this member."""
    return rules.birthday_multiplier != 1 and birthday is not None and birthday.month == day.month


def line_weights(
    rules: PointsRules, *, channel: str, ordered_at: datetime, lines: Sequence[LineFacts]
) -> list[Decimal]:
    """What each line weighs in what its order earned: its amount × its category's multiplier ×
    the promotions on it that day. Given what each line was paid (a checkout's sale earned on
    that), or amounts that the rest of the order's discount cuts alike, and with the channel,
    store and the member's level multiplying every line alike, a share of the weights is the
    share of the points: a return of the double-points lines takes back what they earned, not
    what their money is of the order."""
    day = ordered_at.astimezone(ZoneInfo(rules.timezone)).date()
    out = []
    for line in lines:
        m = rules.category_multipliers.get(line.category or "", Decimal(1))
        for promo in rules.promotions:
            if _applies(promo, channel, line.category, day):
                m *= promo.multiplier
        out.append(line.amount * m)
    return out


def _applies(promo: Promotion, channel: str, category: str | None, day: date) -> bool:
    if not promo.starts_on <= day <= promo.ends_on:
        return False
    if promo.weekdays is not None and day.isoweekday() not in promo.weekdays:
        return False
    if promo.days_of_month is not None and day.day not in promo.days_of_month:
        return False
    if promo.channels is not None and channel not in promo.channels:
        return False
    return promo.categories is None or (category in promo.categories)


def available_at(rules: PointsRules, earned_at: datetime) -> datetime:
    """Earned points wait out the return window before they can be spent."""
    return earned_at + timedelta(days=rules.return_window_days)


def expires_at(rules: PointsRules, earned_at: datetime) -> datetime | None:
    """The end of the last day the points can be spent, in the programme's time zone."""
    if rules.expiry == "never":
        return None
    zone = ZoneInfo(rules.timezone)
    local = earned_at.astimezone(zone).date()
    if rules.expiry == "year_end":
        last = date(local.year + rules.expiry_years, 12, 31)
    else:
        month = local.month - 1 + rules.expiry_months
        year, month = local.year + month // 12, month % 12 + 1
        last = _clamp_day(year, month, 31 if rules.expiry == "month_end" else local.day)
    return datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)


def _clamp_day(year: int, month: int, day: int) -> date:
    for d in (day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def redeem_value(rules: PointsRules, points: int) -> Decimal:
    return (rules.point_value * points).quantize(Decimal("0.01"))


def max_redeemable(rules: PointsRules, *, order_amount: Decimal, balance: int) -> int:
    """The most points one order may take: the share cap, the programme's cap per order, the
    balance, whole steps only; none when that is fewer than one redemption takes."""
    cap = int(
        (order_amount * rules.max_redeem_share / rules.point_value).to_integral_value(ROUND_FLOOR)
    )
    if rules.max_redeem_points is not None:
        cap = min(cap, rules.max_redeem_points)
    most = max(0, min(cap, balance))
    most -= most % rules.redeem_step
    return most if most >= rules.min_redeem else 0


def below_minimum(rules: PointsRules, points: int) -> ValidationFailed | None:
    """The refusal of fewer points than one redemption takes."""
    if points >= rules.min_redeem:
        return None
    return ValidationFailed(f"at least {rules.min_redeem} points per redemption", field="points",
                            ctx={"min_redeem": rules.min_redeem})  # fmt: skip


def step_in(rules: PointsRules, unit: Decimal) -> PointsRules:
    """The rules with their redeem step raised so that a step's value is a whole number of the
    price's `unit` (points of NT$0.5 at a till of whole dollars go two at a time)."""
    value, whole = int(rules.point_value * 100), int(unit * 100)  # both whole cents
    step = math.lcm(rules.redeem_step, whole // math.gcd(value, whole))
    if step == rules.redeem_step:
        return rules
    return rules.model_copy(update={"redeem_step": step})


def off_step(rules: PointsRules, points: int) -> ValidationFailed | None:
    """The refusal of a number of points that is not a whole number of the programme's steps."""
    if points % rules.redeem_step == 0:
        return None
    return ValidationFailed(
        f"points are redeemed in steps of {rules.redeem_step}", field="points",
        code="points_not_in_steps", ctx={"step": rules.redeem_step},
    )  # fmt: skip
