"""What a store's day and a reconciled journal answer, and the journal a till sends."""

from __future__ import annotations

import datetime as dt
from datetime import datetime

from pydantic import Field, model_validator

from omo.commerce.channels import Channel
from omo.shared.schemas import MoneyOut, ReadModel, SignedMoneyIn, StrictModel

# A busy store's day is a few thousand receipts; a journal is checked in one request.
MAX_RECEIPTS = 20_000


class ChannelDay(ReadModel):
    channel: str
    orders: int
    total: MoneyOut


class CouponDay(ReadModel):
    template: str
    name: str
    used: int = Field(description="coupons of this template used on the day's sales")
    discount: MoneyOut = Field(description="what they took off, shipping included")
    given_back: int = Field(description="of those, coupons a refund has since given back")


class SalesDay(ReadModel):
    orders: int = Field(description="sales made on the day, cancelled ones left out")
    member_orders: int
    guest_orders: int
    items: int = Field(description="units sold")
    list_value: MoneyOut = Field(description="unit price × quantity of every line")
    line_discounts: MoneyOut = Field(
        description="taken off lines: a checkout's level discount, or what a channel sent"
    )
    order_discounts: MoneyOut = Field(
        description="taken off whole orders: a checkout's coupons and points paid"
    )
    coupon_discounts: MoneyOut = Field(description="of the discounts, what coupons took off")
    shipping: MoneyOut
    total: MoneyOut = Field(description="what the customers paid")
    member_total: MoneyOut = Field(description="of it, what members paid (會員消費)")
    points_earned: int = Field(description="points the day's sales earned (pending or not)")
    points_redeemed: int = Field(description="points the day's sales were paid with")
    cancelled: int = Field(description="orders of the day recorded as cancelled")
    by_channel: list[ChannelDay]


REFUNDS_LISTED = 500


class RefundsDay(ReadModel):
    count: int = Field(
        description="refunds the store's till gave on the day, whenever and wherever their "
        "sale was made"
    )
    amount: MoneyOut
    points_taken_back: int
    points_given_back: int
    for_other_stores: int = Field(
        description="of them, returns of another store's sale, or of an order of no store "
        "(跨店退貨: the till paid, the sale was not its own)"
    )
    for_other_stores_amount: MoneyOut
    given_elsewhere: int = Field(
        description="not among them: refunds of the store's own sales that another store's "
        "till gave on the day"
    )
    given_elsewhere_amount: MoneyOut


class RefundGiven(ReadModel):
    at: datetime
    order_id: int
    external_id: str = Field(description="the sale's receipt or order number")
    channel: str
    sold_at: str | None = Field(description="the sale's store (none: an order of no store)")
    sold_on: dt.date = Field(description="the brand's day of the sale")
    amount: MoneyOut
    whole: bool = Field(description="all that was left of the order (no lines named)")
    points_taken_back: int
    points_given_back: int
    actor: str | None
    approved_by: str | None


class ReceiptGap(ReadModel):
    prefix: str = Field(description="what the till's numbers start with")
    first: str = Field(description="the day's first recorded number of this till")
    last: str = Field(description="its last")
    recorded: int
    missing: list[str] = Field(description="numbers between them not recorded (the first 50)")
    missing_count: int


class DayTotals(ReadModel):
    orders: int = Field(description="sales of the day, cancelled ones left out")
    total: MoneyOut = Field(description="what they were paid")
    refunds: int = Field(description="refunds the store's till gave on the day")
    refunded: MoneyOut
    net: MoneyOut = Field(description="total − refunded")
    points_earned: int
    points_redeemed: int

    @classmethod
    def of(cls, sales: SalesDay, refunds: RefundsDay) -> DayTotals:
        return cls(
            orders=sales.orders, total=sales.total, refunds=refunds.count,
            refunded=refunds.amount, net=sales.total - refunds.amount,
            points_earned=sales.points_earned, points_redeemed=sales.points_redeemed,
        )  # fmt: skip

    def minus(self, other: DayTotals) -> DayTotals:
        return DayTotals(
            orders=self.orders - other.orders, total=self.total - other.total,
            refunds=self.refunds - other.refunds, refunded=self.refunded - other.refunded,
            net=self.net - other.net, points_earned=self.points_earned - other.points_earned,
            points_redeemed=self.points_redeemed - other.points_redeemed,
        )  # fmt: skip


LATE_LISTED = 100


class LateSale(ReadModel):
    order_id: int
    external_id: str
    channel: str
    total: MoneyOut
    status: str
    ordered_at: datetime
    recorded_at: datetime = Field(
        description="when it reached OMO: after the day was closed, or (a till's transaction "
        "begun before the closing and committed after it) just before"
    )


class DayClosing(ReadModel):
    store: str
    date: dt.date
    closed_at: datetime
    closed_by: str
    version: int = Field(
        default=1, description="1 for the day's first closing; each reopening and closing "
        "again adds one"
    )  # fmt: skip
    at_closing: DayTotals = Field(description="the day's totals when it was closed")
    since: DayTotals = Field(
        description="what changed after: sales of the day sent late (an offline till) and "
        "sales cancelled since — for the books to adjust"
    )
    recorded_after: list[LateSale] = Field(
        description=f"the day's sales the closing did not count — they reached OMO after it "
        f"(the first {LATE_LISTED}, in the order they were recorded)"
    )
    replayed: bool = Field(default=False, description="it was closed before: as it was")


class ReopenIn(StrictModel):
    reason: str = Field(
        min_length=1, max_length=200, pattern=r"\S",
        description="why (a sale missing, closed too early …): kept with the reopening",
    )  # fmt: skip


class DayReopened(ReadModel):
    store: str
    date: dt.date
    version: int = Field(description="the closing reopened; closing again makes the next")
    closed_at: datetime
    closed_by: str
    reopened_at: datetime
    reopened_by: str
    reason: str
    at_closing: DayTotals = Field(description="the figures that closing kept")


class StoreDay(ReadModel):
    store: str
    date: dt.date
    time_zone: str
    since: datetime = Field(description="the day's first instant (UTC)")
    until: datetime = Field(description="the next day's first instant (UTC)")
    complete: bool = Field(description="false while the day is still going on")
    sales: SalesDay
    refunds: RefundsDay
    net: MoneyOut = Field(description="sales.total − refunds.amount")
    enrolled: int = Field(
        description="members who joined at the store on the day (會員招募; accounts merged "
        "into another since as duplicates left out)"
    )
    coupons: list[CouponDay]
    refunds_given: list[RefundGiven] = Field(
        description=f"the refunds its till gave on the day, oldest first (the first "
        f"{REFUNDS_LISTED}; refunds.count says how many): what the drawer paid out, one by one"
    )
    receipt_gaps: list[ReceiptGap] = Field(
        description="per till that numbers its pos receipts in sequence, the numbers between "
        "the day's first and last that OMO has not recorded: lost or voided — to look into"
    )
    closing: DayClosing | None = Field(
        default=None, description="when the day was closed (日結確認), and what changed since"
    )
    reopened: DayReopened | None = Field(
        default=None, description="the day's closing reopened (取消日結), while it is open again"
    )


class StoreLine(ReadModel):
    store_id: int | None
    store: str | None = Field(description="the store's code; none: orders of no store")
    name: str | None
    orders: int = Field(description="sales made on the day, cancelled ones left out")
    member_orders: int
    total: MoneyOut = Field(description="what the customers paid")
    member_total: MoneyOut = Field(description="of it, what members paid")
    member_share: float | None = Field(description="member_total / total (會員消費佔比)")
    refunds: int = Field(
        description="refunds its till gave on the day, whenever and wherever their sale was made"
    )
    refunded: MoneyOut
    net: MoneyOut = Field(description="total − refunded")
    points_earned: int
    points_redeemed: int
    first_sale_at: datetime | None = Field(description="when its first sale of the day was made")
    last_sale_at: datetime | None = Field(
        description="its last: a till that stopped sending at noon shows here"
    )
    closed_at: datetime | None = Field(
        default=None, description="when the store closed the day (日結確認); none: not yet"
    )
    enrolled: int = Field(
        default=0, description="members who joined at the store on the day (會員招募)"
    )


class StoresDay(ReadModel):
    date: dt.date
    time_zone: str
    complete: bool = Field(description="false while the day is still going on")
    stores: list[StoreLine] = Field(
        description="every open store, with nothing if nothing reached OMO (a till to ask "
        "after), then closed stores with figures, then orders of no store"
    )
    total: StoreLine = Field(description="all of them")


class TillReceipt(StrictModel):
    external_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    total: SignedMoneyIn = Field(
        description="what the customer paid, as the till printed it; negative: a return slip "
        "(what it paid back), its number the key the till gave the refund with"
    )


class TillJournal(StrictModel):
    """The day's receipts as the till or the POS's journal has them."""

    channel: Channel = Field(default=Channel.POS, description="the channel the till sends as")
    receipts: list[TillReceipt] = Field(max_length=MAX_RECEIPTS)

    @model_validator(mode="after")
    def _each_once(self) -> TillJournal:
        seen: set[str] = set()
        for n, r in enumerate(self.receipts):
            if r.external_id in seen:
                raise ValueError(f"receipts.{n}.external_id: {r.external_id!r} is listed twice")
            seen.add(r.external_id)
        return self


class Elsewhere(ReadModel):
    external_id: str
    order_id: int
    channel: str = Field(
        description="the channel it was recorded under: when not the journal's, sending it "
        "again under the journal's would record a second order"
    )
    store: str | None
    date: dt.date = Field(description="the brand's day the sale was recorded on")
    total: MoneyOut


class Differing(ReadModel):
    external_id: str
    order_id: int
    till_total: MoneyOut
    recorded_total: MoneyOut
    status: str


class Unlisted(ReadModel):
    external_id: str
    order_id: int
    total: MoneyOut
    status: str


class ReturnFound(ReadModel):
    key: str = Field(description="the return slip's number: the refund's idempotency key")
    order_id: int
    external_id: str = Field(description="the sale's receipt or order number")
    till_amount: MoneyOut | None = Field(description="what the slip says was paid back")
    recorded_amount: MoneyOut = Field(description="what OMO's refund gave back")
    store: str | None = Field(description="the store whose till gave the refund")
    date: dt.date = Field(description="the brand's day the refund was given")


class ReturnsCheck(ReadModel):
    till_returns: int = Field(description="return slips in the journal (negative totals)")
    till_refunded: MoneyOut = Field(description="what they paid back")
    recorded: int = Field(description="refunds OMO holds for this till and day")
    recorded_refunded: MoneyOut
    matched: int = Field(description="slips whose refund OMO holds here, at their amount")
    missing: list[str] = Field(
        description="slips OMO holds no refund for: give the refund through OMO with the "
        "slip's number as its key (the points the goods earned are taken back with it)"
    )
    elsewhere: list[ReturnFound] = Field(description="refunded at another store or day")
    differing: list[ReturnFound] = Field(description="refunded here for another amount")
    unlisted: list[ReturnFound] = Field(description="refunds OMO holds here, not in the journal")


class Reconciliation(ReadModel):
    store: str | None = Field(description="none: the channel's orders at every store and none")
    date: dt.date
    channel: str
    complete: bool = Field(description="false while the day is still going on")
    till_receipts: int = Field(description="sales in the journal (return slips apart)")
    till_total: MoneyOut
    recorded: int = Field(description="OMO's orders of the store, day and channel")
    recorded_total: MoneyOut = Field(description="their totals, cancelled ones included")
    matched: int = Field(description="receipts recorded on the day at their total")
    missing: list[str] = Field(
        description="receipts OMO never recorded: send them again (a sale is idempotent)"
    )
    elsewhere: list[Elsewhere] = Field(
        description="recorded at another store, on another day or under another channel"
    )
    differing: list[Differing] = Field(description="recorded with another total")
    unlisted: list[Unlisted] = Field(description="recorded for the day, not in the till's list")
    returns: ReturnsCheck | None = Field(
        default=None, description="when the journal lists return slips (negative totals): "
        "matched against the refunds given at this till on the day; none: it lists none, and "
        "refunds are not checked",
    )  # fmt: skip
    balanced: bool = Field(description="every receipt matched and nothing unlisted")
