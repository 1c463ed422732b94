"""Request and response shapes of checkout."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field

from omo.commerce.channels import Channel, Fulfilment
from omo.commerce.schemas import CODE, OrderResult
from omo.coupons.schemas import ClaimableRead, CouponRead
from omo.members.schemas import IdentifierIn
from omo.shared.schemas import MAX_ID, AwareDatetime, MoneyIn, MoneyOut, ReadModel, StrictModel


class BasketLineIn(StrictModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: MoneyIn | None = Field(default=None, description="default: the catalogue price")


class QuoteRequest(StrictModel):
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    customer: list[IdentifierIn] = Field(
        default_factory=list, max_length=10, description="or find the member by identifiers"
    )
    channel: Channel
    store: str | None = Field(default=None, pattern=CODE)
    lines: list[BasketLineIn] = Field(min_length=1, max_length=500)
    coupon_codes: list[str] = Field(default_factory=list, max_length=5)
    points: int = Field(default=0, ge=0, le=10_000_000, description="points to pay with")
    shipping_fee: MoneyIn = Field(default=Decimal(0))


class CommitRequest(QuoteRequest):
    external_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ordered_at: AwareDatetime | None = Field(default=None, description="default: now")
    fulfilment: Fulfilment | None = None


class CommitQuote(StrictModel):
    """Commit a quote as it was priced: its basket, and its total or nothing."""

    quote: str = Field(min_length=1, max_length=60_000)
    external_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ordered_at: AwareDatetime | None = Field(default=None, description="default: now")
    fulfilment: Fulfilment | None = None


class QuoteLine(ReadModel):
    sku: str
    name: str | None
    category: str | None
    quantity: int
    unit_price: MoneyOut
    tier_discount: MoneyOut
    amount: MoneyOut


class CouponLine(ReadModel):
    code: str
    applied: bool
    discount: MoneyOut
    shipping_discount: MoneyOut
    reason: str | None = Field(description="why it does not apply")
    message: str | None
    ctx: dict[str, Any] = Field(
        default_factory=dict, description="the values the message is made of, by name"
    )


class BasketCoupon(ReadModel):
    """One of the member's coupons, as it would price on the basket (可用／不可用優惠券)."""

    coupon: CouponRead
    applies: bool = Field(description="added to the codes given, it takes something off")
    line: CouponLine = Field(description="what it takes off, or why it does not apply")


class BasketClaimable(ReadModel):
    """A coupon the member may still claim, as it would price on the basket once claimed
    (領券中心 at checkout: 領取後可折抵)."""

    claimable: ClaimableRead
    applies: bool = Field(
        description="claimed and added to the codes given, it takes something off"
    )
    line: CouponLine = Field(
        description="what it would take off, or why it would not apply; its code is the "
        "template's (a coupon has one once claimed)"
    )


class QuoteNotice(ReadModel):
    """Why the quote is not quite what was asked (points lowered, the level's price dropped),
    in English and by its values, for a till to say in its own language."""

    reason: str = Field(description="points_lowered_to_cap, points_lowered_to_step, …")
    message: str
    ctx: dict[str, Any] = Field(default_factory=dict)


class TierOutlook(ReadModel):
    """What the sale would do for the member's level (升等差額提示: 再消費 NT$1,200 即可
    升等金卡)."""

    reached: bool = Field(description="the sale brings the member to `level` at once")
    level: str = Field(description="the level reached, else the next one")
    name: str
    metric: str = Field(description="what the level asks: spend, orders, points, single_order")
    short: Decimal | None = Field(
        description="what `level` still misses after the sale: money (spend; single_order: "
        "the one order it takes), orders or points; none once reached"
    )


class QuoteRead(ReadModel):
    member_id: int | None
    tier: str | None
    lines: list[QuoteLine]
    subtotal: MoneyOut
    tier_discount: MoneyOut
    coupons: list[CouponLine]
    coupon_discount: MoneyOut
    points_balance: int
    points_cap: int = Field(description="the most points this basket may take")
    points_redeemed: int
    points_value: MoneyOut
    shipping_fee: MoneyOut
    shipping_discount: MoneyOut = Field(description="coupons' and the tier's")
    tier_shipping_discount: MoneyOut = Field(
        description="waived by the tier's monthly free shipping (one of its shipments)"
    )
    total: MoneyOut
    points_to_earn: int = Field(description="pending once the order is committed")
    notes: list[str] = Field(description="the notices' messages")
    notices: list[QuoteNotice] = Field(default_factory=list)
    quote: str | None = Field(
        default=None,
        description="give it to /checkout/commit-quote to sell this basket at this total "
        "(valid 30 minutes)",
    )
    tier_outlook: TierOutlook | None = Field(
        default=None,
        description="a quote's: what the sale would do for the member's level (none for a "
        "guest, at the top level, for a level by rank, and on a commit)",
    )


class CommitResult(ReadModel):
    order: OrderResult
    price: QuoteRead | None = Field(description="absent on a replay")
    points_earned: int
    replayed: bool
