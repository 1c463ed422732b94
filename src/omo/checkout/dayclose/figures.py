"""A store's day (日結): what OMO recorded for one store on one of the brand's days, and the
till's receipt journal matched against it, receipt by receipt.

A till that was offline queues its sales and sends them later; one that never arrives has
earned no points and moved no level, and nobody notices until the member asks. At closing the
till (or the back office, from the POS's journal) sends the day's receipt numbers and totals;
OMO answers those it never recorded (send them again: a sale is idempotent on its number),
those recorded at another store or on another day, those whose total differs, and those OMO
holds that the till did not list. Read only: nothing is written.

The day is the brand's calendar day (Settings.time_zone), midnight to midnight; a sale is on
the day it was made (ordered_at), a refund on the day it was given."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import BigInteger, func, select, type_coerce
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.commerce import service as commerce
from omo.commerce.channels import Channel
from omo.commerce.models import Order, OrderLine, OrderRefund, Store
from omo.coupons.models import Coupon, CouponRedemption, CouponTemplateRow
from omo.db import UnitOfWork
from omo.points.models import PointsEntry
from omo.shared import clock
from omo.shared.errors import Forbidden, ValidationFailed
from omo.shared.money import ZERO, from_cents
from omo.shared.schemas import MoneyIn, MoneyOut, ReadModel, StrictModel

# A busy store's day is a few thousand receipts; a journal is checked in one request.
MAX_RECEIPTS = 20_000
EARLIEST = date(2000, 1, 1)  # before any till sent OMO a sale; keeps the window computable
_CHUNK = 500  # receipt numbers per IN (…) look-up
_CENTS = BigInteger


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
    points_earned: int = Field(description="points the day's sales earned (pending or not)")
    points_redeemed: int = Field(description="points the day's sales were paid with")
    cancelled: int = Field(description="orders of the day recorded as cancelled")
    by_channel: list[ChannelDay]


class RefundsDay(ReadModel):
    count: int = Field(description="refunds given on the day, whenever their sale was made")
    amount: MoneyOut
    points_taken_back: int
    points_given_back: int


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
    coupons: list[CouponDay]


class TillReceipt(StrictModel):
    external_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    total: MoneyIn = Field(description="what the customer paid, as the till printed it")


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


class Reconciliation(ReadModel):
    store: str
    date: dt.date
    channel: str
    complete: bool = Field(description="false while the day is still going on")
    till_receipts: int
    till_total: MoneyOut
    recorded: int = Field(description="OMO's orders of the store, day and channel")
    recorded_total: MoneyOut = Field(description="their totals, cancelled ones included")
    matched: int = Field(description="receipts recorded on the day at their total")
    missing: list[str] = Field(
        description="receipts OMO never recorded: send them again (a sale is idempotent)"
    )
    elsewhere: list[Elsewhere] = Field(description="recorded at another store or on another day")
    differing: list[Differing] = Field(description="recorded with another total")
    unlisted: list[Unlisted] = Field(description="recorded for the day, not in the till's list")
    balanced: bool = Field(description="every receipt matched and nothing unlisted")


@dataclass(frozen=True)
class Day:
    store: Store
    day: date
    zone: ZoneInfo
    since: datetime
    until: datetime
    complete: bool


def store_day(
    uow: UnitOfWork, *, store: str, day: date, time_zone: str, principal: Principal
) -> StoreDay:
    """What the store sold, refunded, earned and redeemed on the brand's day `day`."""
    with uow.read() as session:
        d = _day(session, store, day, time_zone, principal)
        sales = _sales(session, d)
        refunds = _refunds(session, d)
        return StoreDay(
            store=d.store.code, date=d.day, time_zone=time_zone, since=d.since, until=d.until,
            complete=d.complete, sales=sales, refunds=refunds,
            net=sales.total - refunds.amount, coupons=_coupons(session, d),
        )  # fmt: skip


def reconcile(
    uow: UnitOfWork,
    *,
    store: str,
    day: date,
    time_zone: str,
    journal: TillJournal,
    principal: Principal,
) -> Reconciliation:
    """The till's receipts for the day matched against what OMO recorded; changes nothing."""
    channel = journal.channel.value
    with uow.read() as session:
        d = _day(session, store, day, time_zone, principal)
        held = {
            r.external_id: r
            for r in session.execute(
                select(Order.id, Order.external_id, Order.total, Order.status).where(
                    *_of_day(d), Order.channel == channel
                )
            )
        }
        listed = {r.external_id: r.total for r in journal.receipts}
        matched = 0
        differing: list[Differing] = []
        absent: list[str] = []
        for external_id, total in listed.items():
            row = held.get(external_id)
            if row is None:
                absent.append(external_id)
            elif row.total == total and row.status != "cancelled":
                matched += 1
            else:
                differing.append(
                    Differing(
                        external_id=external_id, order_id=row.id, till_total=total,
                        recorded_total=row.total, status=row.status,
                    )
                )  # fmt: skip
        elsewhere = _recorded_elsewhere(session, d, channel, absent)
        found = {e.external_id for e in elsewhere}
        unlisted = [
            Unlisted(external_id=k, order_id=r.id, total=r.total, status=r.status)
            for k, r in sorted(held.items(), key=lambda kv: kv[1].id)
            if k not in listed
        ]
        missing = [k for k in absent if k not in found]
        return Reconciliation(
            store=d.store.code, date=d.day, channel=channel, complete=d.complete,
            till_receipts=len(listed), till_total=sum(listed.values(), ZERO),
            recorded=len(held), recorded_total=sum((r.total for r in held.values()), ZERO),
            matched=matched, missing=missing, elsewhere=elsewhere, differing=differing,
            unlisted=unlisted,
            balanced=not (missing or elsewhere or differing or unlisted),
        )  # fmt: skip


def today(time_zone: str) -> date:
    """The brand's day now."""
    return clock.now().astimezone(ZoneInfo(time_zone)).date()


def parse_day(text: str | None, time_zone: str) -> date:
    """A day as a page's form gives it (YYYY-MM-DD); none: today."""
    if not text:
        return today(time_zone)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a day (YYYY-MM-DD)", field="day") from None


_SEPARATOR = re.compile(r"[\t,;\s]+")


def parse_journal(text: str, channel: Channel = Channel.POS) -> TillJournal:
    """A journal pasted from the POS: a receipt number and its total per line, separated by a
    tab, comma, semicolon or spaces (`POS-1 1,030`; NT$ and $ signs are dropped); a first line
    with no digit in it is a header. A bad line is refused by its number."""
    receipts: list[dict[str, str]] = []
    line_of: list[int] = []  # the text's line number of each receipt
    for n, raw in enumerate(text.splitlines(), start=1):
        parts = _SEPARATOR.split(raw.strip(), maxsplit=1)
        if parts == [""]:
            continue
        total = parts[1] if len(parts) == 2 else ""
        total = total.replace(",", "").replace("NT$", "").replace("$", "").strip()
        if n == _first_line(text) and not any(c.isdigit() for c in raw):
            continue  # a header: 單號,金額 (a receipt's line has digits)
        if not total:
            raise ValidationFailed(f"line {n}: a receipt number and its total", field="journal")
        receipts.append({"external_id": parts[0], "total": total})
        line_of.append(n)
    if len(receipts) > MAX_RECEIPTS:
        raise ValidationFailed(f"more than {MAX_RECEIPTS:,} receipts", field="journal")
    try:
        return TillJournal.model_validate({"channel": channel, "receipts": receipts})
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        twice = re.match(r"receipts\.(\d+)\.external_id: (.*)", msg)
        loc = err["loc"]
        at = int(twice.group(1)) if twice else loc[1] if len(loc) > 1 else None
        said = twice.group(2) if twice else f"{loc[-1]}: {msg}"
        where = f"line {line_of[at]}: " if isinstance(at, int) else ""
        raise ValidationFailed(f"{where}{said}", field="journal") from None


def _first_line(text: str) -> int:
    """The number of the text's first line that is not blank."""
    return next((n for n, raw in enumerate(text.splitlines(), start=1) if raw.strip()), 0)


def window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[midnight, next midnight) of the day in `zone`, as UTC instants (a day of a clock
    change is 23 or 25 hours long)."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _day(session: Session, code: str, day: date, time_zone: str, principal: Principal) -> Day:
    zone = ZoneInfo(time_zone)
    now = clock.now()
    today = now.astimezone(zone).date()
    if not EARLIEST <= day <= today:
        raise ValidationFailed(
            f"{day.isoformat()} is not a day from {EARLIEST.isoformat()} to today "
            f"({today.isoformat()}, {time_zone})",
            field="day", ctx={"today": today.isoformat()},
        )  # fmt: skip
    store = commerce.store_by_code(session, code, field="code")
    if principal.store_id is not None and principal.store_id != store.id:
        raise Forbidden(
            "this API key is bound to another store and cannot read this one's day",
            field="code", code="wrong_store",
        )  # fmt: skip
    since, until = window(day, zone)
    return Day(store, day, zone, since, until, complete=until <= now)


def _of_day(d: Day) -> tuple[Any, ...]:
    return (Order.store_id == d.store.id, Order.ordered_at >= d.since, Order.ordered_at < d.until)


def _sold(d: Day) -> Any:
    """The ids of the day's sales (cancelled orders left out)."""
    return select(Order.id).where(*_of_day(d), Order.status != "cancelled")


def _cents(column: Any) -> Any:
    return func.coalesce(func.sum(type_coerce(column, _CENTS)), 0)


def _sales(session: Session, d: Day) -> SalesDay:
    cancelled = session.scalar(
        select(func.count()).select_from(Order).where(*_of_day(d), Order.status == "cancelled")
    )
    channels = session.execute(
        select(Order.channel, func.count(), _cents(Order.total))
        .where(*_of_day(d), Order.status != "cancelled")
        .group_by(Order.channel)
        .order_by(Order.channel)
    ).all()
    orders = session.execute(
        select(
            func.count(Order.member_id), _cents(Order.discount_total),
            _cents(Order.shipping_fee),
        ).where(*_of_day(d), Order.status != "cancelled")
    ).one()  # fmt: skip
    lines = session.execute(
        select(
            func.coalesce(func.sum(OrderLine.quantity), 0),
            func.coalesce(
                func.sum(type_coerce(OrderLine.unit_price, _CENTS) * OrderLine.quantity), 0
            ),
            _cents(OrderLine.discount),
        ).where(OrderLine.order_id.in_(_sold(d)))
    ).one()
    pts = dict(
        session.execute(
            select(PointsEntry.kind, func.sum(PointsEntry.points))
            .where(PointsEntry.order_id.in_(_sold(d)), PointsEntry.kind.in_(("earn", "redeem")))
            .group_by(PointsEntry.kind)
        ).all()
    )
    coupons = session.scalar(
        select(
            _cents(CouponRedemption.discount) + _cents(CouponRedemption.shipping_discount)
        ).where(CouponRedemption.order_id.in_(_sold(d)))
    )
    count = sum(n for _c, n, _t in channels)
    return SalesDay(
        orders=count, member_orders=orders[0], guest_orders=count - orders[0],
        items=lines[0], list_value=from_cents(lines[1]), line_discounts=from_cents(lines[2]),
        order_discounts=from_cents(orders[1]), coupon_discounts=from_cents(coupons or 0),
        shipping=from_cents(orders[2]), total=from_cents(sum(t for _c, _n, t in channels)),
        points_earned=int(pts.get("earn") or 0), points_redeemed=-int(pts.get("redeem") or 0),
        cancelled=cancelled or 0,
        by_channel=[ChannelDay(channel=c, orders=n, total=from_cents(t)) for c, n, t in channels],
    )  # fmt: skip


def _refunds(session: Session, d: Day) -> RefundsDay:
    row = session.execute(
        select(
            func.count(), _cents(OrderRefund.amount),
            func.coalesce(func.sum(OrderRefund.points_taken_back), 0),
            func.coalesce(func.sum(OrderRefund.points_given_back), 0),
        )
        .join(Order, Order.id == OrderRefund.order_id)
        .where(
            Order.store_id == d.store.id,
            OrderRefund.created_at >= d.since,
            OrderRefund.created_at < d.until,
        )
    ).one()  # fmt: skip
    return RefundsDay(
        count=row[0], amount=from_cents(row[1]), points_taken_back=int(row[2]),
        points_given_back=int(row[3]),
    )  # fmt: skip


def _coupons(session: Session, d: Day) -> list[CouponDay]:
    r = CouponRedemption
    used = (
        select(
            Coupon.template_id, func.count().label("used"),
            (_cents(r.discount) + _cents(r.shipping_discount)).label("cents"),
            func.count(r.reversed_at).label("back"),
        )
        .join(Coupon, Coupon.id == r.coupon_id)
        .where(r.order_id.in_(_sold(d)))
        .group_by(Coupon.template_id)
        .subquery()
    )  # fmt: skip
    rows = session.execute(
        select(CouponTemplateRow.code, CouponTemplateRow.definition, used.c.used, used.c.cents,
               used.c.back)
        .join(used, used.c.template_id == CouponTemplateRow.id)
        .order_by(CouponTemplateRow.code)
    ).all()  # fmt: skip
    return [
        CouponDay(template=code, name=str(definition.get("name", code)), used=n,
                  discount=from_cents(cents), given_back=back)
        for code, definition, n, cents, back in rows
    ]  # fmt: skip


def _recorded_elsewhere(
    session: Session, d: Day, channel: str, external_ids: Sequence[str]
) -> list[Elsewhere]:
    """Of these receipt numbers, those recorded at another store or on another day."""
    found: list[Elsewhere] = []
    for chunk in _chunks(external_ids):
        rows = session.execute(
            select(Order.id, Order.external_id, Order.store_id, Order.ordered_at, Order.total)
            .where(Order.channel == channel, Order.external_id.in_(chunk))
            .order_by(Order.id)
        ).all()
        for r in rows:
            found.append(
                Elsewhere(
                    external_id=r.external_id, order_id=r.id,
                    store=commerce.store_code(session, r.store_id),
                    date=r.ordered_at.astimezone(d.zone).date(), total=r.total,
                )
            )  # fmt: skip
    return found


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
