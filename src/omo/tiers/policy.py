"""Tier qualification and movement (pure: no database, no clock of its own). TIER-1…3.

A programme is an ordered list of levels (一般 → 銀卡 → 金卡 → 鑽石). Each level above the first
has one qualification rule over a rolling window: spend, points earned, orders, one order of
at least an amount (單筆滿額直升), or a percentile rank of spend among members (top 5 %). A
member moves up as soon as they qualify; they move down only at their review date (a year
after they reached the level, or the calendar year's end), and then only after a grace period,
and only as far down as what they still keep: a level may ask less to keep it at review than
to reach it (`keep_threshold`: 升等 30,000, 續等 20,000).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from omo.commerce.channels import Channel
from omo.shared.schemas import CategoryName, StrictModel
from omo.shared.zones import checked_zone

Metric = Literal["spend", "points", "orders", "percentile", "single_order"]


class Benefits(StrictModel):
    discount_rate: Decimal = Field(
        default=Decimal(1), gt=0, le=1, description="price multiplier: 0.9 = 10 % off"
    )
    points_multiplier: Decimal = Field(default=Decimal(1), ge=0, le=20)
    birthday_coupon: str | None = Field(default=None, max_length=64, description="template code")
    monthly_free_shipping: int = Field(default=0, ge=0, le=100)
    monthly_gift: str | None = Field(
        default=None, max_length=40, description="coupon template code, issued once a month"
    )
    early_access: bool = False


class Level(StrictModel):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_\-]+$")
    name: str = Field(min_length=1, max_length=40)
    metric: Metric = "spend"
    threshold: Decimal = Field(
        default=Decimal(0), ge=0,
        description="spend in NT$, points, orders, one order's NT$ (single_order); for "
        "percentile: the top share, 0.05 = top 5 %",
    )  # fmt: skip
    keep_threshold: Decimal | None = Field(
        default=None, ge=0,
        description="what keeps the level at its review, below what reaches it (升等 30,000, "
        "續等 20,000), in the level's metric; none: the threshold",
    )  # fmt: skip
    benefits: Benefits = Field(default_factory=Benefits)

    @model_validator(mode="after")
    def _keep_below(self) -> Level:
        if self.keep_threshold is None:
            return self
        looser = (
            self.keep_threshold >= self.threshold
            if self.metric == "percentile"
            else self.keep_threshold <= self.threshold
        )
        if not looser or (self.metric == "percentile" and self.keep_threshold >= 1):
            raise ValueError(f"keep_threshold: {self.code} must be kept by no more than reaches it")
        return self


class TierProgramme(StrictModel):
    levels: list[Level] = Field(min_length=1, max_length=12)
    window_months: int = Field(default=12, ge=1, le=60)
    review: Literal["anniversary", "year_end"] = "anniversary"
    grace_days: int = Field(default=30, ge=0, le=365)
    timezone: str = "Asia/Taipei"
    discount_excludes: list[CategoryName] = Field(
        default_factory=list, max_length=100,
        description="categories no level's discount_rate applies to (gift cards, tobacco): "
        "their lines are sold at their price to every level",
    )  # fmt: skip
    discount_marked_down: bool = Field(
        default=True,
        description="false: a line sold below its catalogue price (a markdown given at the "
        "till) takes no level discount (特價品不再折扣)",
    )
    discount_channels: list[Channel] | None = Field(
        default=None, min_length=1, max_length=6,
        description="the channels a level's discount_rate applies on (會員價僅限門市: "
        "[\"pos\"]); none: every channel. The level's other benefits hold everywhere",
    )  # fmt: skip
    discount_per: Literal["line", "unit"] = Field(
        default="line",
        description="where a level's discount is rounded to the price unit: line (the line's "
        "whole discount) or unit (每件會員價: one unit's member price, the same on every unit "
        "of the line and on the receipt)",
    )
    downgrade_steps: int | None = Field(
        default=None, ge=1, le=11,
        description="levels a member falls at most at one review (1: 鑽石 to 金卡, and to 銀卡 "
        "a review later, 降一級); none: to the highest level the standing keeps",
    )  # fmt: skip

    @model_validator(mode="after")
    def _ordered(self) -> TierProgramme:
        checked_zone(self.timezone)
        codes = [lv.code for lv in self.levels]
        if len(set(codes)) != len(codes):
            raise ValueError("levels: codes must be unique")
        if self.levels[0].threshold != 0:
            raise ValueError("levels: the first level is where everyone starts (threshold 0)")
        for lower, higher in zip(self.levels[1:], self.levels[2:], strict=False):
            if lower.metric == higher.metric:
                harder = (
                    higher.threshold < lower.threshold
                    if higher.metric == "percentile"
                    else higher.threshold > lower.threshold
                )
                if not harder:
                    raise ValueError(
                        f"levels: {higher.code} must be harder to reach than {lower.code}"
                    )
        for lv in self.levels[1:]:
            if lv.metric == "percentile" and not Decimal(0) < lv.threshold < Decimal(1):
                raise ValueError(f"levels: {lv.code}: a percentile threshold is a share in (0, 1)")
        return self

    def level(self, code: str) -> Level:
        for lv in self.levels:
            if lv.code == code:
                return lv
        return self.levels[0]  # a level removed from the programme falls back to the base

    def rank(self, code: str) -> int:
        for n, lv in enumerate(self.levels):
            if lv.code == code:
                return n
        return 0


DEFAULT_PROGRAMME = TierProgramme(
    levels=[
        Level(code="member", name="一般會員"),
        Level(code="silver", name="銀卡", threshold=Decimal(10_000),
              benefits=Benefits(discount_rate=Decimal("0.95"), points_multiplier=Decimal("1.2"))),
        Level(code="gold", name="金卡", threshold=Decimal(30_000),
              benefits=Benefits(discount_rate=Decimal("0.9"), points_multiplier=Decimal("1.5"),
                                monthly_free_shipping=2)),
        Level(code="diamond", name="鑽石", threshold=Decimal(80_000),
              benefits=Benefits(discount_rate=Decimal("0.85"), points_multiplier=Decimal(2),
                                monthly_free_shipping=5, early_access=True)),
    ]
)  # fmt: skip


@dataclass(frozen=True)
class Standing:
    """A member's figures over the programme's window."""

    spend: Decimal
    points: int
    orders: int
    top_share: Decimal | None  # 0.03 = in the top 3 % by spend; None when not computed
    largest: Decimal = Decimal(0)  # the largest order, net of its refunds


@dataclass(frozen=True)
class Decision:
    level: str
    changed: bool
    reason: str
    review_at: datetime


def qualifies(level: Level, s: Standing) -> bool:
    return _meets(level.metric, level.threshold, s)


def _meets(metric: Metric, bar: Decimal, s: Standing) -> bool:
    if metric == "spend":
        return s.spend >= bar
    if metric == "points":
        return s.points >= bar
    if metric == "orders":
        return s.orders >= bar
    if metric == "single_order":
        return s.largest >= bar
    return s.top_share is not None and s.top_share <= bar


def qualified_level(p: TierProgramme, s: Standing) -> int:
    """The highest level the standing reaches (levels are checked top down)."""
    for n in range(len(p.levels) - 1, 0, -1):
        if qualifies(p.levels[n], s):
            return n
    return 0


def keeps(level: Level, s: Standing) -> bool:
    """Whether the standing keeps a level held at its review: its keep_threshold, else its
    threshold."""
    bar = level.threshold if level.keep_threshold is None else level.keep_threshold
    return _meets(level.metric, bar, s)


def kept_level(p: TierProgramme, s: Standing, have: int) -> int:
    """At review, the highest level up to the one held (`have`) that the standing keeps."""
    for n in range(have, 0, -1):
        if keeps(p.levels[n], s):
            return n
    return 0


def review_date(p: TierProgramme, since: datetime) -> datetime:
    """When a level reached at `since` is next reviewed."""
    zone = ZoneInfo(p.timezone)
    local = since.astimezone(zone).date()
    if p.review == "year_end":
        day = date(local.year + 1, 1, 1)
    else:
        try:
            day = local.replace(year=local.year + 1)
        except ValueError:  # 29 February
            day = date(local.year + 1, 3, 1)
    return datetime.combine(day, time(0), tzinfo=zone)


def decide(
    p: TierProgramme, *, current: str, since: datetime, review_at: datetime | None,
    standing: Standing, now: datetime,
) -> Decision:  # fmt: skip
    """Where the member stands now: up at once, down only past review + grace (by at most the
    programme's downgrade_steps)."""
    have = p.rank(current)
    reach = qualified_level(p, standing)
    review = review_at or review_date(p, since)
    if reach > have:
        new = p.levels[reach].code
        return Decision(new, True, _why("upgrade", p.levels[reach], standing), review_date(p, now))
    reach = kept_level(p, standing, have)  # at or below the level held: what keeps it
    if reach < have:
        if now >= review + timedelta(days=p.grace_days):
            if p.downgrade_steps is not None:  # at most so many levels at one review
                reach = max(reach, have - p.downgrade_steps)
            new = p.levels[reach].code
            why = _why("downgrade at review", p.levels[have], standing, missed=True)
            return Decision(new, True, why, review_date(p, now))
        return Decision(current, False, "below the level's rule; kept until review", review)
    if now >= review:
        # still qualifies at review: the level is renewed for another period
        return Decision(current, False, "renewed at review", review_date(p, now))
    return Decision(current, False, "unchanged", review)


def returned(
    p: TierProgramme, *, current: str, before: str, was: Standing, standing: Standing
) -> str | None:
    """After a return: the level an upgrade falls back to when the goods that earned it came
    back — the higher of what the standing still reaches and `before`, the level held before
    the upgrade — or None when the member keeps `current`. Only a return that takes away what
    the level rests on moves it: the member qualified with the goods (`was`) and does not
    without them (`standing`). A downgrade for buying too little waits for review and grace
    (decide); an upgrade a return undoes was not earned and goes at once, or the level's
    discount would be bought with goods brought back. A level by rank is left to the review,
    which ranks every member."""
    have = p.rank(current)
    if p.levels[have].metric == "percentile":
        return None
    if qualified_level(p, was) < have or qualified_level(p, standing) >= have:
        return None
    back = max(qualified_level(p, standing), p.rank(before))
    return p.levels[back].code if back < have else None


def returned_why(level: Level, s: Standing) -> str:
    return _why("upgrade returned", level, s, missed=True)


def _why(kind: str, level: Level, s: Standing, *, missed: bool = False) -> str:
    have = {
        "spend": f"spend {s.spend}", "points": f"{s.points} points", "orders": f"{s.orders} orders",
        "single_order": f"largest order {s.largest}",
        "percentile": f"top {s.top_share}" if s.top_share is not None else "no rank",
    }[level.metric]  # fmt: skip
    bar = level.keep_threshold if missed and level.keep_threshold is not None else level.threshold
    rule = f"{level.metric} ≥ {bar}" if level.metric != "percentile" else f"top {bar}"
    return f"{kind}: {have} {'misses' if missed else 'meets'} {level.name} ({rule})"


def progress(p: TierProgramme, current: str, s: Standing) -> tuple[Level | None, Decimal | None]:
    """The next level and what is still missing to reach it (None at the top, or by rank)."""
    have = p.rank(current)
    if have + 1 >= len(p.levels):
        return None, None
    nxt = p.levels[have + 1]
    return nxt, _short(nxt, nxt.threshold, s)


@dataclass(frozen=True)
class Outlook:
    """What one more order would do for a member's level (升等差額提示 at checkout)."""

    reached: Level | None  # the level the order brings the member to at once, if it does
    next: Level | None  # else the next level (none at the top) …
    short: Decimal | None  # … and what is still missing of it after the order (none by rank)


def outlook(
    p: TierProgramme, current: str, s: Standing, *, total: Decimal, points: int
) -> Outlook:  # fmt: skip
    """The member holds `current` with standing `s`; an order of `total` earning `points`
    counts once more in every figure of the window, as a sale does when it is recorded."""
    after = Standing(spend=s.spend + total, points=s.points + points, orders=s.orders + 1,
                     top_share=None, largest=max(s.largest, total))  # fmt: skip
    reach = qualified_level(p, after)
    if reach > p.rank(current):
        return Outlook(p.levels[reach], None, None)
    nxt, short = progress(p, current, after)
    return Outlook(None, nxt, short)


def to_keep(p: TierProgramme, current: str, s: Standing) -> Decimal | None:
    """What the window still misses of what keeps the level held at review (its keep
    threshold, else its threshold): 0 when kept; None for the base level, or by rank."""
    have = p.rank(current)
    if have == 0:
        return None
    level = p.levels[have]
    bar = level.keep_threshold if level.keep_threshold is not None else level.threshold
    return _short(level, bar, s)


def _short(level: Level, bar: Decimal, s: Standing) -> Decimal | None:
    if level.metric == "spend":
        return max(Decimal(0), bar - s.spend)
    if level.metric == "points":
        return max(Decimal(0), bar - s.points)
    if level.metric == "orders":
        return max(Decimal(0), bar - s.orders)
    if level.metric == "single_order":  # one order of the whole bar, or nothing
        return bar if s.largest < bar else Decimal(0)
    return None
