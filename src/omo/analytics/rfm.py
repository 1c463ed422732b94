"""Each member's figures, RFM scores, segment, grade, lifecycle stage and automatic tags.

Written once as Ibis expressions over the snapshot's two tables; the same expressions run on
DuckDB and on Spark. Everything an engine could order differently is made deterministic: scores
come from cumulative distribution (members with equal values get equal scores, whatever order an
engine meets them in), times are integer seconds, money integer cents. No database here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis

from omo.analytics.rules import Rule, parse

DAY = 86_400


@dataclass(frozen=True)
class Segment:
    name: str
    rule: str  # in the rule language (analytics/rules.py); the first matching segment wins


# Checked in this order; a buyer matching none is "others", a member who never bought "prospect".
SEGMENTS: tuple[Segment, ...] = (
    Segment("lost", "recency_days > 365"),
    Segment("dormant", "recency_days > 180"),
    Segment("vip", "r >= 4 and f >= 4 and m >= 4"),
    Segment("loyal", "f >= 4 and r >= 3"),
    Segment("new", "tenure_days <= 90 and purchase_days == 1"),
    Segment("high_potential", "r >= 4 and m >= 3"),
    Segment("at_risk", "r <= 2 and (f >= 3 or m >= 4)"),
)
# (label, share of buyers by spend) from the top; the rest are "rest"
GRADES: tuple[tuple[str, float], ...] = (
    ("top 5%", 0.05),
    ("top 15%", 0.15),
    ("top 30%", 0.30),
    ("top 50%", 0.50),
)
# (stage, most days since the last purchase); beyond the last, "lost"
STAGES: tuple[tuple[str, int], ...] = (("active", 90), ("lapsing", 180), ("dormant", 365))


@dataclass(frozen=True)
class Policy:
    """What the merchant can tune; the defaults are the seed articles' playbook."""

    bins: int = 5
    segments: Sequence[Segment] = SEGMENTS
    grades: Sequence[tuple[str, float]] = GRADES
    stages: Sequence[tuple[str, int]] = STAGES
    new_days: int = 90  # lifecycle "new": first purchase at most this many days ago, one day
    price_sensitive_share: float = 0.5  # tag: at least this share of purchases discounted
    high_value_share: float = 0.15  # tag: top share of buyers by spend
    # local time of the brand, for what "one day" is (Taiwan: UTC+8)
    utc_offset_s: int = 8 * 3600
    compiled: tuple[tuple[str, Rule], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 2 <= self.bins <= 10:
            raise ValueError("bins must be between 2 and 10")
        object.__setattr__(self, "compiled", tuple((s.name, parse(s.rule)) for s in self.segments))


def member_figures(members: Any, orders: Any, *, as_of_s: int, policy: Policy) -> Any:
    """One row per active member: purchase figures up to `as_of_s`, scores, segment, tags."""
    orders = orders.filter(orders.ordered_s <= as_of_s)
    orders = orders.mutate(day=(orders.ordered_s + policy.utc_offset_s) // DAY)
    daily = orders.group_by(["member_id", "day"]).aggregate(
        spend=orders.net_cents.sum(),
        orders=orders.count(),
        discounted=(orders.discount_cents > 0).cast("int64").sum(),
        online=orders.online.sum(),
    )
    buyers = daily.group_by("member_id").aggregate(
        orders=daily.orders.sum(),
        purchase_days=daily.count(),
        first_day=daily.day.min(),
        last_day=daily.day.max(),
        spend_cents=daily.spend.sum(),
        first_day_cents=daily.spend.argmin(daily.day),  # one row per day: the first day's spend
        discounted=daily.discounted.sum(),
        online_orders=daily.online.sum(),
    )
    # Active members only, through this one join (a member merged away owns no orders, and any
    # other's purchases drop out here, before a single score is ranked); the scores rank buyers
    # among buyers: every window is partitioned by whether the member bought.
    joined = members.left_join(buyers, members.member_id == buyers.member_id).drop(
        "member_id_right"
    )
    as_of_day = (as_of_s + policy.utc_offset_s) // DAY
    joined = joined.mutate(
        bought=joined.orders.notnull(),
        recency_days=as_of_day - joined.last_day,
        tenure_days=as_of_day - joined.first_day,
        offline_orders=joined.orders - joined.online_orders,
        discount_share=joined.discounted / joined.orders,
        spend=joined.spend_cents / 100,
        # the member's own rhythm: mean days between purchase days (two or more of them)
        cycle_days=ibis.ifelse(
            joined.purchase_days >= 2,
            (joined.last_day - joined.first_day) / (joined.purchase_days - 1),
            ibis.null("float64"),
        ),
    )
    bought = joined.bought
    joined = joined.mutate(
        r=_score(joined.recency_days, bought, policy.bins, descending=True),
        f=_score(joined.purchase_days, bought, policy.bins),
        m=_score(joined.spend_cents, bought, policy.bins),
        # share of buyers spending at least as much: 1 − (those spending less) / all, over the
        # same ascending order as m, so the engine sorts by spend once, not twice
        top_share=ibis.ifelse(
            bought,
            1
            - ibis.rank().over(ibis.window(group_by=bought, order_by=joined.spend_cents))
            / joined.member_id.count().over(ibis.window(group_by=bought)),
            ibis.null("float64"),
        ),
    )
    joined = joined.mutate(
        segment=ibis.ifelse(
            joined.bought, _first_match(joined, policy.compiled, default="others"), "prospect"
        ),
        grade=ibis.ifelse(joined.bought, _grade(joined.top_share, policy.grades), ibis.null("str")),
        lifecycle=ibis.ifelse(joined.bought, _stage(joined, policy), "prospect"),
    ).drop("discounted", "bought")
    return joined.mutate(
        orders=joined.orders.fill_null(0),
        purchase_days=joined.purchase_days.fill_null(0),
        spend_cents=joined.spend_cents.fill_null(0),
        online_orders=joined.online_orders.fill_null(0),
        offline_orders=joined.offline_orders.fill_null(0),
        tag_high_value=(joined.top_share <= policy.high_value_share).fill_null(False),
        tag_price_sensitive=(joined.discount_share >= policy.price_sensitive_share).fill_null(
            False
        ),
        tag_omnichannel=((joined.online_orders > 0) & (joined.offline_orders > 0)).fill_null(False),
        tag_dormant=joined.lifecycle.isin(["dormant", "lost"]),
    )


def _score(column: Any, bought: Any, bins: int, *, descending: bool = False) -> Any:
    """1 … bins by cumulative share among buyers (null for the others): equal values always
    share a score."""
    order = ibis.desc(column) if descending else column
    share = ibis.cume_dist().over(ibis.window(group_by=bought, order_by=order))
    # cume_dist is k/n; the epsilon keeps an exact k/n = j/bins in bin j on every engine
    score = (share * bins - 1e-9).ceil().clip(lower=1, upper=bins).cast("int8")
    return ibis.ifelse(bought, score, ibis.null("int8"))


def _first_match(table: Any, rules: Sequence[tuple[str, Rule]], *, default: str) -> Any:
    cases = [(rule.to_ibis(table), name) for name, rule in rules]
    return ibis.cases(*cases, else_=default)


def _grade(top_share: Any, grades: Sequence[tuple[str, float]]) -> Any:
    cases = [(top_share <= share + 1e-12, label) for label, share in grades]
    return ibis.cases(*cases, else_="rest")


def _stage(buyers: Any, policy: Policy) -> Any:
    new = (buyers.tenure_days <= policy.new_days) & (buyers.purchase_days == 1)
    cases = [(new, "new")]
    cases += [(buyers.recency_days <= days, stage) for stage, days in policy.stages]
    return ibis.cases(*cases, else_="lost")
