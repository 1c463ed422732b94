"""Request and response shapes of the coupons area."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field

from omo.commerce.channels import Channel
from omo.coupons.rules import CouponTemplate
from omo.shared.schemas import MAX_ID, MoneyIn, MoneyOut, ReadModel, StrictModel

KEY = r"^[\x21-\x7e]+$"


class TemplateRead(ReadModel):
    code: str
    template: CouponTemplate
    active: bool
    issued: int
    redeemed: int


class IssueRequest(StrictModel):
    member_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        min_length=1, max_length=10_000
    )
    key: str = Field(
        min_length=1, max_length=80, pattern=KEY,
        description="the campaign's id: issuing again with it changes nothing",
    )  # fmt: skip


class CouponTerms(ReadModel):
    """What using a coupon asks, for a card or a till to tell the member before they try."""

    min_spend: MoneyOut | None = Field(description="its lines must reach this (滿1000)")
    every: MoneyOut | None = Field(
        default=None, description="it takes its amount off again for every this much its lines "
        "reach (每滿1000減100)",
    )  # fmt: skip
    max_discount: MoneyOut | None = Field(
        default=None, description="the most it takes off (最高折300)"
    )
    steps: list[tuple[MoneyOut, MoneyOut]] | None = Field(
        default=None, description="each threshold and what it takes, lowest first, for a "
        "coupon of several (階梯滿額: 滿1000減100, 滿2000減250)",
    )  # fmt: skip
    min_items: int | None = Field(description="its lines must hold this many units (任選3件)")
    categories: list[str] | None = Field(description="only on these categories")
    excluded_categories: list[str] | None = Field(description="not on these")
    channels: list[str] | None = Field(description="only on these channels")
    stores: list[str] | None = Field(default=None, description="only in these stores (codes)")
    weekdays: list[int] | None = Field(description="only on these days, 1 Monday … 7 Sunday")
    hours: tuple[time, time] | None = Field(description="only from, until (in `timezone`)")
    timezone: str
    min_level: str | None = Field(description="for that tier level and above")
    first_order_only: bool
    with_level_price: bool = Field(description="false: not with the member's level price")


class CouponRead(ReadModel):
    code: str
    template: str
    name: str = Field(description="the template's name, as the member sees it")
    member_id: int | None
    status: str = Field(description="active or void (withdrawn)")
    state: str = Field(
        description="now: usable, used, expired, not_yet_valid or void (the coupon or its "
        "template withdrawn); a card and a till list the usable ones"
    )
    uses: int
    max_uses: int
    valid_from: datetime | None
    valid_until: datetime | None
    issued_at: datetime
    terms: CouponTerms
    open_now: bool = Field(
        default=True, description="its days of the week and hours of the day take it now: a "
        "usable coupon of the weekend is not open on a Monday",
    )  # fmt: skip


class IssueResult(ReadModel):
    issued: list[CouponRead]
    refused: dict[int, str] = Field(description="member id → reason")


class LineIn(StrictModel):
    sku: str = Field(min_length=1, max_length=64)
    category: str | None = Field(default=None, max_length=64)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: MoneyIn
    discount: MoneyIn = Field(default=Decimal(0))


class BasketIn(StrictModel):
    channel: Channel
    store: str | None = Field(default=None, max_length=32)
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    shipping_fee: MoneyIn = Field(default=Decimal(0))


class CheckRequest(StrictModel):
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    basket: BasketIn


class RedeemRequest(CheckRequest):
    idempotency_key: str = Field(min_length=1, max_length=120, pattern=KEY)


class CouponCheck(ReadModel):
    code: str
    usable: bool
    reason: str | None = Field(description="why not: expired, min_spend_not_met, …")
    message: str | None
    ctx: dict[str, Any] = Field(
        default_factory=dict, description="the values the message is made of, by name"
    )
    discount: MoneyOut
    shipping_discount: MoneyOut
    free_sku: str | None
    terms: CouponTerms = Field(description="what using it asks, to show beside the answer")


class RedemptionRead(ReadModel):
    code: str
    redemption_key: str
    member_id: int | None
    order_id: int | None
    discount: MoneyOut
    shipping_discount: MoneyOut
    redeemed_at: datetime
    reversed_at: datetime | None


class TemplateKpis(ReadModel):
    code: str
    name: str
    issued: int
    redeemed: int
    redemption_rate: float
    discount_cost: MoneyOut
    order_revenue: MoneyOut = Field(description="totals of the orders the coupons were used on")


class ClaimableRead(ReadModel):
    """A coupon the member may claim now (領券中心)."""

    template: str
    name: str
    terms: CouponTerms
    held: int = Field(description="the member's coupons of this template so far")
    per_member_limit: int
    claim_until: datetime | None = Field(
        description="the last moment to claim one (claim_until, else the template's valid_until)"
    )
    left: int | None = Field(description="coupons the budget has left; none: no budget")


class ClaimRequest(StrictModel):
    template: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")
    idempotency_key: str = Field(
        min_length=1, max_length=80, pattern=KEY,
        description="the member's tap: a retry or a second tap with it gets the same coupon",
    )  # fmt: skip
