"""An order as a till's returns screen needs it (CHK-3): found by its id or by the receipt's
channel and number, its lines with what was returned of each and what is left to return, the
refunds made, and the loyalty on it — the points it earned and was paid with, each net of what
refunds took or gave back, and the coupons used. And a member's orders, newest first."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from pydantic import Field
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from omo.checkout.refunds import RefundLine, line_worth
from omo.commerce import service as commerce
from omo.commerce.channels import Channel
from omo.commerce.models import Order, OrderRefund
from omo.commerce.schemas import OrderLineRead, OrderRead
from omo.coupons.models import Coupon, CouponRedemption
from omo.db import UnitOfWork
from omo.members import service as members
from omo.points.models import PointsEntry
from omo.shared.errors import NotFound
from omo.shared.money import CENT, to_unit
from omo.shared.schemas import MoneyOut, ReadModel


class ReturnableLine(OrderLineRead):
    returned: int = Field(description="units given back so far")
    returnable: int = Field(description="units that can still be given back")
    paid_each: MoneyOut = Field(
        description="what one unit gives back when returned: its price after the level's "
        "discount, less its share of the coupons that applied to it and of the points paid "
        "(a free item: 0), rounded to the price unit (OMO_PRICE_UNIT). The return that "
        "completes the order gives back all that is left"
    )


class RefundRead(ReadModel):
    idempotency_key: str
    amount: MoneyOut
    store: str | None = Field(default=None, description="the store whose till gave it")
    lines: list[RefundLine] = Field(description="empty: the whole order (all that was left)")
    reason: str | None
    actor: str | None
    approved_by: str | None = Field(description="who let it past the returns policy, if it had to")
    created_at: datetime
    coupon_clawed_back: MoneyOut = Field(
        default=Decimal(0), description="kept back: a coupon's threshold the goods kept miss"
    )
    points_charged: MoneyOut = Field(
        default=Decimal(0),
        description="kept back for earned points the member had spent; not left to give back",
    )
    journey_coupons_charged: MoneyOut = Field(
        default=Decimal(0),
        description="kept back for coupons given for the order or its level that the member "
        "had used; not left to give back",
    )


class CouponUsed(ReadModel):
    code: str
    discount: MoneyOut
    shipping_discount: MoneyOut
    reversed: bool = Field(description="given back to the member by a whole refund")


class OrderDetail(OrderRead):
    lines: list[ReturnableLine]
    refundable: MoneyOut = Field(description="money that can still be given back")
    can_return: bool = Field(
        description="units are left to give back (a free item kept may give back no money)"
    )
    refunds: list[RefundRead]
    points_earned: int = Field(
        description="what the order earned, less what refunds took back or wrote off"
    )
    points_spent: int = Field(description="points it was paid with, less what refunds gave back")
    coupons: list[CouponUsed]


def get_order(uow: UnitOfWork, *, order_id: int, unit: Decimal = CENT) -> OrderDetail:
    """The order with what is left to return; `unit`: the smallest amount the tills take
    (Settings.price_unit), to which what one unit gives back is rounded."""
    with uow.read() as session:
        order = session.get(Order, order_id)
        if order is None:
            raise NotFound(f"no order {order_id}", field="order_id", ctx={"order_id": order_id})
        return _detail(session, order, unit)


def find_order(
    uow: UnitOfWork, *, channel: Channel, external_id: str, unit: Decimal = CENT
) -> OrderDetail:
    """The order a receipt names (its channel and number, as the till or shop sent them)."""
    with uow.read() as session:
        order = session.scalar(
            select(Order).where(Order.channel == channel.value, Order.external_id == external_id)
        )
        if order is None:
            raise NotFound(
                f"no {channel.value} order {external_id!r}", field="external_id",
                ctx={"channel": channel.value, "receipt": external_id},
            )  # fmt: skip
        return _detail(session, order, unit)


def member_orders(
    uow: UnitOfWork, *, member_id: int, limit: int, before: int | None
) -> list[OrderRead]:
    """A member's orders (with those of members merged into them), newest first; `before`, an
    order id of the previous page's last, pages back."""
    with uow.read() as session:
        member = members.current_member(session, member_id).id
        stmt = (
            select(Order)
            .where(Order.member_id == member)
            .order_by(Order.ordered_at.desc(), Order.id.desc())
            .limit(limit)
        )
        if before is not None:
            last = session.get(Order, before)
            if last is None or last.member_id != member:
                raise NotFound(f"no order {before} of this member", field="before",
                               ctx={"before": before})  # fmt: skip
            stmt = stmt.where(
                or_(
                    Order.ordered_at < last.ordered_at,
                    and_(Order.ordered_at == last.ordered_at, Order.id < last.id),
                )
            )
        return [OrderRead.model_validate(o) for o in session.scalars(stmt)]


def _detail(session: Session, order: Order, unit: Decimal) -> OrderDetail:
    lines = commerce.order_lines(session, order.id)
    refunds = list(
        session.scalars(
            select(OrderRefund).where(OrderRefund.order_id == order.id).order_by(OrderRefund.id)
        )
    )
    returned: dict[int, int] = defaultdict(int)
    for r in refunds:
        if not r.lines:  # the whole order: all that was left
            returned.update({li.line_no: li.quantity for li in lines})
        for li in r.lines:
            returned[li["line_no"]] += li["quantity"]
    open_ = order.status != "cancelled"
    charged = sum(((r.points_charged or Decimal(0)) + (r.journey_coupons_charged or Decimal(0))
                   for r in refunds), Decimal(0))  # fmt: skip
    worth = line_worth(session, order, lines)
    codes = {i: commerce.store_code(session, i) for i in {r.store_id for r in refunds}}
    base = {k: getattr(order, k) for k in OrderRead.model_fields}
    shown = [
        ReturnableLine(
            **OrderLineRead.model_validate(li).model_dump(),
            returned=returned[li.line_no],
            returnable=max(li.quantity - returned[li.line_no], 0) if open_ else 0,
            paid_each=to_unit(worth[li.line_no] / li.quantity, unit),
        )
        for li in lines
    ]
    return OrderDetail(
        **base,
        lines=shown,
        can_return=order.status != "refunded" and any(li.returnable for li in shown),
        refundable=max(order.total - order.refunded_total - charged, Decimal(0))
        if open_
        else Decimal(0),
        refunds=[_refund_read(r, codes) for r in refunds],
        **_points_on(session, order.id, written_off=sum(r.points_short or 0 for r in refunds)),
        coupons=_coupons_on(session, order.id),
    )


def _refund_read(r: OrderRefund, codes: dict[int | None, str | None]) -> RefundRead:
    return RefundRead(
        idempotency_key=r.idempotency_key.removeprefix("refund:"), amount=r.amount,
        store=codes[r.store_id],
        lines=[RefundLine(**li) for li in r.lines], reason=r.reason, actor=r.actor,
        approved_by=r.approved_by, created_at=r.created_at,
        coupon_clawed_back=r.coupon_clawed_back or Decimal(0),
        points_charged=r.points_charged or Decimal(0),
        journey_coupons_charged=r.journey_coupons_charged or Decimal(0),
    )  # fmt: skip


def _coupons_on(session: Session, order_id: int) -> list[CouponUsed]:
    rows = session.execute(
        select(CouponRedemption, Coupon.code)
        .join(Coupon, Coupon.id == CouponRedemption.coupon_id)
        .where(CouponRedemption.order_id == order_id)
        .order_by(CouponRedemption.id)
    ).all()
    return [
        CouponUsed(
            code=code,
            discount=r.discount,
            shipping_discount=r.shipping_discount,
            reversed=r.reversed_at is not None,
        )
        for r, code in rows
    ]


def _points_on(session: Session, order_id: int, *, written_off: int) -> dict[str, int]:
    """The order's own points (not a referral's bonus on it): earned less taken back and less
    what refunds found spent and wrote off, spent less given back."""
    entries = list(session.scalars(select(PointsEntry).where(PointsEntry.order_id == order_id)))
    earned = {e.id: e.points for e in entries if e.kind == "earn"}
    spent = {e.id for e in entries if e.kind == "redeem"}
    taken = sum(-e.points for e in entries if e.kind == "reverse" and e.reverses_id in earned)
    # a refund puts spent points back into their lots (reverse); partial refunds made before
    # 12-06 credited a lot of their own (refund)
    given = sum(
        e.points
        for e in entries
        if e.kind == "refund" or (e.kind == "reverse" and e.reverses_id in spent)
    )
    paid = sum(-e.points for e in entries if e.kind == "redeem")
    earned_left = sum(earned.values()) - taken - written_off
    return {"points_earned": max(earned_left, 0), "points_spent": paid - given}
