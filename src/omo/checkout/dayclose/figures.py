"""A store's day in figures: sales, discounts, coupons, points and refunds (queries, each in
the caller's read transaction)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, and_, case, false, func, select, true, type_coerce
from sqlalchemy.orm import Session

from omo.checkout.dayclose.days import Day, member_paid, of_day, sold, sum_cents
from omo.checkout.dayclose.schemas import (
    REFUNDS_LISTED,
    ChannelDay,
    CouponDay,
    DayTotals,
    RefundGiven,
    RefundsDay,
    SalesDay,
)
from omo.commerce import service as commerce
from omo.commerce.models import Order, OrderLine, OrderRefund
from omo.coupons.models import Coupon, CouponRedemption, CouponTemplateRow
from omo.points.models import PointsEntry
from omo.shared import clock
from omo.shared.money import from_cents


def day_totals(session: Session, d: Day) -> DayTotals:
    """The day's sales, refunds, net and points (what a closing keeps)."""
    return DayTotals.of(sales_of(session, d), refunds_of(session, d))


def sales_of(session: Session, d: Day) -> SalesDay:
    cancelled = session.scalar(
        select(func.count()).select_from(Order).where(*of_day(d), Order.status == "cancelled")
    )
    channels = session.execute(
        select(Order.channel, func.count(), sum_cents(Order.total))
        .where(*of_day(d), Order.status != "cancelled")
        .group_by(Order.channel)
        .order_by(Order.channel)
    ).all()
    orders = session.execute(
        select(
            func.count(Order.member_id), sum_cents(Order.discount_total), member_paid(),
            sum_cents(Order.shipping_fee),
        ).where(*of_day(d), Order.status != "cancelled")
    ).one()  # fmt: skip
    lines = session.execute(
        select(
            func.coalesce(func.sum(OrderLine.quantity), 0),
            func.coalesce(
                func.sum(type_coerce(OrderLine.unit_price, BigInteger) * OrderLine.quantity), 0
            ),
            sum_cents(OrderLine.discount),
        ).where(OrderLine.order_id.in_(sold(d)))
    ).one()
    pts = dict(
        session.execute(
            select(PointsEntry.kind, func.sum(PointsEntry.points))
            .where(PointsEntry.order_id.in_(sold(d)), PointsEntry.kind.in_(("earn", "redeem")))
            .group_by(PointsEntry.kind)
        ).all()
    )
    coupons = session.scalar(
        select(
            sum_cents(CouponRedemption.discount) + sum_cents(CouponRedemption.shipping_discount)
        ).where(CouponRedemption.order_id.in_(sold(d)))
    )
    count = sum(n for _c, n, _t in channels)
    return SalesDay(
        orders=count, member_orders=orders[0], guest_orders=count - orders[0],
        items=lines[0], list_value=from_cents(lines[1]), line_discounts=from_cents(lines[2]),
        order_discounts=from_cents(orders[1]), coupon_discounts=from_cents(coupons or 0),
        shipping=from_cents(orders[3]), total=from_cents(sum(t for _c, _n, t in channels)),
        member_total=from_cents(orders[2]),
        points_earned=int(pts.get("earn") or 0), points_redeemed=-int(pts.get("redeem") or 0),
        cancelled=cancelled or 0,
        by_channel=[ChannelDay(channel=c, orders=n, total=from_cents(t)) for c, n, t in channels],
    )  # fmt: skip


def refunds_of(session: Session, d: Day) -> RefundsDay:
    """Refunds the store's till gave on the day (跨店退貨 included: another store's sale
    returned here), and apart, its own sales' refunds given at other stores' tills."""
    here: Any
    others: Any
    away: Any
    if d.store is None:  # the brand's day: every refund
        here, others, away = true(), false(), false()
    else:
        here = OrderRefund.store_id == d.store.id
        others = Order.store_id.is_distinct_from(d.store.id)
        away = and_(Order.store_id == d.store.id, OrderRefund.store_id.is_distinct_from(d.store.id))
    row = session.execute(
        select(
            _count(here), _cents(here, OrderRefund.amount),
            _sum(here, OrderRefund.points_taken_back), _sum(here, OrderRefund.points_given_back),
            _count(and_(here, others)), _cents(and_(here, others), OrderRefund.amount),
            _count(away), _cents(away, OrderRefund.amount),
        )
        .join(Order, Order.id == OrderRefund.order_id)
        .where(OrderRefund.created_at >= d.since, OrderRefund.created_at < d.until)
    ).one()  # fmt: skip
    return RefundsDay(
        count=row[0], amount=from_cents(row[1]), points_taken_back=int(row[2]),
        points_given_back=int(row[3]), for_other_stores=row[4],
        for_other_stores_amount=from_cents(row[5]), given_elsewhere=row[6],
        given_elsewhere_amount=from_cents(row[7]),
    )  # fmt: skip


def refunds_given(session: Session, d: Day) -> list[RefundGiven]:
    """The refunds the store's till gave on the day, one by one."""
    if d.store is None:
        return []
    codes = {s.id: s.code for s in commerce.list_stores(session)}
    rows = session.execute(
        select(OrderRefund.created_at, OrderRefund.order_id, Order.external_id, Order.channel,
               Order.store_id, Order.ordered_at, OrderRefund.amount, OrderRefund.lines,
               OrderRefund.points_taken_back, OrderRefund.points_given_back, OrderRefund.actor,
               OrderRefund.approved_by)
        .join(Order, Order.id == OrderRefund.order_id)
        .where(OrderRefund.store_id == d.store.id, OrderRefund.created_at >= d.since,
               OrderRefund.created_at < d.until)
        .order_by(OrderRefund.created_at, OrderRefund.id)
        .limit(REFUNDS_LISTED)
    ).all()  # fmt: skip
    return [
        RefundGiven(
            at=r.created_at, order_id=r.order_id, external_id=r.external_id, channel=r.channel,
            sold_at=codes.get(r.store_id) if r.store_id else None,
            sold_on=clock.as_utc(r.ordered_at).astimezone(d.zone).date(), amount=r.amount,
            whole=not r.lines, points_taken_back=r.points_taken_back or 0,
            points_given_back=r.points_given_back or 0, actor=r.actor,
            approved_by=r.approved_by,
        )
        for r in rows
    ]  # fmt: skip


def _count(cond: Any) -> Any:
    return func.count(case((cond, 1)))


def _cents(cond: Any, column: Any) -> Any:
    return sum_cents(case((cond, column), else_=0))


def _sum(cond: Any, column: Any) -> Any:
    return func.coalesce(func.sum(case((cond, column), else_=0)), 0)


def coupons_of(session: Session, d: Day) -> list[CouponDay]:
    r = CouponRedemption
    used = (
        select(
            Coupon.template_id, func.count().label("used"),
            (sum_cents(r.discount) + sum_cents(r.shipping_discount)).label("cents"),
            func.count(r.reversed_at).label("back"),
        )
        .join(Coupon, Coupon.id == r.coupon_id)
        .where(r.order_id.in_(sold(d)))
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
                  discount=from_cents(took), given_back=back)
        for code, definition, n, took, back in rows
    ]  # fmt: skip
