"""What the analytics API takes and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from omo.shared.schemas import MoneyOut, ReadModel


class RunRead(ReadModel):
    id: int
    engine: str
    status: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    members: int
    buyers: int
    policy: dict[str, Any] = Field(description="bins, segment rules, grades, lifecycle stages")
    models: dict[str, Any] = Field(description="fitted BG/NBD and Gamma-Gamma parameters")
    segments: dict[str, int]
    timings: dict[str, float]
    error: str | None


class ScoreRead(ReadModel):
    member_id: int
    run_id: int
    orders: int
    purchase_days: int
    spend: MoneyOut
    recency_days: int | None
    tenure_days: int | None
    online_orders: int
    offline_orders: int
    discount_share: float | None
    cycle_days: float | None = Field(description="mean days between purchase days")
    views_30d: int = Field(description="product views in the last 30 days")
    carts_30d: int = Field(description="adds to cart in the last 30 days")
    ad_clicks_30d: int = Field(description="ad clicks in the last 30 days")
    nps_last: int | None = Field(description="the last NPS answer (0–10) in the last 90 days")
    r: int | None
    f: int | None
    m: int | None
    segment: str
    grade: str | None
    lifecycle: str
    tags: list[str]
    p_alive: float | None = Field(description="probability the member still buys (BG/NBD)")
    purchases_90d: float | None
    purchases_365d: float | None
    expected_order_value: MoneyOut | None
    clv: MoneyOut | None = Field(description="expected spend in the next 365 days")
    clv_tier: str | None
    at_risk: bool


class ScorePage(ReadModel):
    total: int
    items: list[ScoreRead]


class SegmentRead(ReadModel):
    name: str
    rule: str = Field(description="in the rule language; 'others'/'prospect' are what is left")
    kind: str = Field(description="builtin (from the last refresh) or saved (a merchant's rule)")
    members: int


class SegmentCreate(ReadModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,39}$")
    rule: str = Field(min_length=1, max_length=500)


class RuleCheck(ReadModel):
    rule: str = Field(min_length=1, max_length=500)


class RuleCount(ReadModel):
    rule: str
    fields: list[str]
    members: int
    share: float = Field(description="of the members scored by the last refresh")


class Kpis(ReadModel):
    """The headline figures of a period [period_from, period_to). Counts of members are of
    active (not merged) members who had joined by period_to; rates are shares in [0, 1]."""

    period_from: datetime
    period_to: datetime
    members: int = Field(description="active members who had joined by period_to")
    new_members: int = Field(description="of them, those who joined in the period")
    active_members: int = Field(description="members with a counted order in the period")
    active_rate: float = Field(description="active_members / members")
    vip_members: int = Field(description="members above the base tier level at period_to")
    vip_share: float = Field(description="vip_members / members")
    levels: dict[str, int] = Field(description="members above the base level at period_to")
    upgrades: int = Field(description="members moved up a tier at least once in the period")
    upgrade_rate: float = Field(description="upgrades / members")
    downgrades: int = Field(description="members moved down a tier at least once in the period")
    downgrade_rate: float = Field(description="downgrades / members")
    dormant_after_days: int
    dormant_members: int = Field(
        description="members who had bought by period_to, none in the dormant_after_days before"
    )
    dormancy_rate: float = Field(description="dormant_members / members who had bought")
    identification_rate: float = Field(description="share of order value tied to a member")
    duplicate_account_rate: float = Field(
        description="active members sharing name and birth date with another, today"
    )
    online_share: float = Field(description="share of order value from online channels")
    offline_share: float = Field(description="share of order value from stores (POS)")
    orders: int = Field(description="counted orders in the period, guests' included")
    net_sales: MoneyOut = Field(description="their totals less refunds (NT$)")
    aov: MoneyOut = Field(description="net_sales / orders (NT$)")
    buyers: int = Field(description="members with a counted order in the period")
    repeat_buyers: int = Field(description="of them, those with two or more orders in it")
    repurchase_rate: float = Field(description="repeat_buyers / buyers")
    returning_buyers: int = Field(description="buyers who had also bought before the period")
    coupons_issued: int = Field(description="coupons issued in the period")
    coupons_used: int = Field(description="of them, redeemed and not reversed by period_to")
    coupon_redemption_rate: float = Field(description="coupons_used / coupons_issued")
    coupon_redemptions: int = Field(description="redemptions in the period, not reversed")
    coupon_discount: MoneyOut = Field(description="discount given by coupons in the period")
    points_outstanding: int = Field(description="points held by members at period_to")
    point_value: MoneyOut = Field(description="NT$ per point redeemed, as set today")
    points_liability: MoneyOut = Field(description="points_outstanding × point_value (NT$)")


class BasketRuleRead(BaseModel):
    level: str = Field(description="sku or category")
    antecedents: list[str] = Field(description="bought this (one item) or these together (two)")
    antecedent: str = Field(description="the first of antecedents")
    consequent: str = Field(description="… also bought this")
    orders: int = Field(description="purchases with the antecedents and the consequent")
    support: float = Field(description="share of all purchases with them all")
    confidence: float = Field(description="share of purchases with the antecedents that have all")
    lift: float = Field(description="confidence over the consequent's own share; > 1 = affinity")


class Recommendation(BaseModel):
    sku: str
    name: str | None
    lift: float = Field(description="the strongest rule leading here")
    confidence: float
    because: list[str] = Field(description="SKUs the member bought that lead here")


class FunnelStage(BaseModel):
    channel: str = Field(description="a channel, or 'all' for any channel")
    reached: int = Field(description="members with any event or order in the channel")
    viewed: int = Field(description="… with a product view")
    carted: int = Field(description="… with an add to cart")
    ordered: int = Field(description="… with a counted order")
    picked_up: int = Field(description="… with an order picked up in a store (online channels)")
    repurchased: int = Field(description="ordered here and have two or more orders in the period")
    carts: int = Field(
        description="members who added to a cart here (first add in the period); for 'all', "
        "the channels' carts added up"
    )
    abandoned: int = Field(description="… with no order here after it within the period")
    cart_abandonment_rate: float = Field(description="abandoned / carts")


class Funnel(BaseModel):
    period_from: datetime
    period_to: datetime
    channels: list[FunnelStage]
    online_orders: int = Field(description="counted online orders of members in the period")
    pickup_orders: int = Field(description="… collected in a store (buy online, pick up)")
    pickup_share: float = Field(description="pickup_orders / online_orders")
    store_customers: int = Field(description="members who had bought in a store before the period")
    store_customers_online: int = Field(description="… who ordered online in the period")
    store_to_online_rate: float = Field(description="store_customers_online / store_customers")


class CohortMonthRead(BaseModel):
    months_since: int = Field(description="0 = the month of joining")
    active: int = Field(description="members of the cohort who bought in that month")
    rate: float = Field(description="active / size")


class CohortRead(BaseModel):
    cohort: str = Field(description="month of joining, YYYY-MM (brand's local time)")
    size: int
    months: list[CohortMonthRead]


class DiscountGroup(BaseModel):
    key: str = Field(description="'all', a channel, a tier level ('guest': no member)")
    orders: int
    list_value: MoneyOut = Field(description="goods at list price (unit price × quantity)")
    giveaway: MoneyOut = Field(description="line and order discounts (coupons, points, tier)")
    giveaway_ratio: float = Field(description="giveaway / list_value")
    cost_coverage: float = Field(description="share of list value whose unit cost is known")
    margin_before: float | None = Field(description="1 − cost / list value, before discounts")
    margin_after: float | None = Field(description="(list − giveaway − cost) / (list − giveaway)")
    recommended_min: float | None = Field(
        default=None, description="tiers: a discount rate to start from (today's, within the cap)"
    )
    recommended_max: float | None = Field(
        default=None, description="tiers: the highest discount rate that keeps target_margin"
    )


class CouponCost(BaseModel):
    template: str
    orders: int = Field(description="orders the template's coupons were redeemed on")
    discount: MoneyOut = Field(description="what those coupons took off (goods and shipping)")
    list_value: MoneyOut = Field(description="the list value of those orders' goods")
    giveaway_ratio: float = Field(description="discount / list_value")


class DiscountReport(BaseModel):
    period_from: datetime
    period_to: datetime
    target_margin: float
    overall: DiscountGroup
    channels: list[DiscountGroup]
    tiers: list[DiscountGroup]
    coupons: list[CouponCost]


class Credit(BaseModel):
    source: str = Field(description="utm_source of the ad click; '(none)' without one")
    campaign: str = Field(description="utm_campaign of the ad click; '(none)' without one")
    channel: str = Field(description="where the click happened (web, app, …)")
    orders: int
    revenue: MoneyOut = Field(description="order totals less refunds")
    discount: MoneyOut = Field(description="discounts given on those orders")
    store_orders: int = Field(description="of the orders, those rung up in a store")
    store_revenue: MoneyOut = Field(description="… and their revenue (online-to-store credit)")


class SalesChannel(BaseModel):
    channel: str
    orders: int
    revenue: MoneyOut
    discount: MoneyOut
    attributed_orders: int = Field(description="orders with an ad click in the lookback window")


class Attribution(BaseModel):
    period_from: datetime
    period_to: datetime
    lookback_days: int = Field(description="a click counts for orders up to this many days later")
    first_touch: list[Credit] = Field(description="each order credited to its earliest click")
    last_touch: list[Credit] = Field(description="each order credited to its latest click")
    channels: list[SalesChannel] = Field(description="by the channel the order was placed in")
    unattributed_orders: int
    unattributed_revenue: MoneyOut


class NewProductRead(ReadModel):
    sku: str
    name: str | None = None
    launched: str = Field(description="day of its first sale (brand's local time)")
    buyers: int = Field(description="members who bought it")
    repeat_buyers: int = Field(description="… in two orders or more")
    window_buyers: int = Field(description="members who bought anything since its first sale")
    penetration: float = Field(description="buyers / window_buyers")
    repeat_rate: float = Field(description="repeat_buyers / buyers")
