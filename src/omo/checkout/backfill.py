"""Points for purchases made before the programme (`omo backfill-points`). Imported orders are
history and earn nothing; a brand starting its programme on them may count recent purchases as
if the programme had run then — a launch gift members can see at once. Each order since the day
given earns what the programme in force gives at its base level (the level a member held then is
not known), dated from the order: pending through its return window, expiring by the rule from
it; what a partial refund gave back is taken back, as a refund would; points whose date has
passed are then expired. An order earns once: running it again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from omo.commerce import service as commerce
from omo.commerce.channels import COUNTED_STATUSES
from omo.commerce.models import Order, Store
from omo.db import UnitOfWork
from omo.members import service as members
from omo.points import service as points
from omo.points.models import PointsEntry
from omo.shared import clock
from omo.shared.errors import ValidationFailed


@dataclass(frozen=True)
class Backfilled:
    orders: int  # orders that earned
    points: int  # points they earned, less what their refunds took back
    expired: int  # points expired at once: their date had passed


def backfill(uow: UnitOfWork, *, since: datetime, batch: int = 500) -> Backfilled:
    now = clock.now()
    if since > now:
        raise ValidationFailed("a moment past: the purchases to count were made since then",
                               field="since")  # fmt: skip
    with uow.read() as session:
        stores: dict[int, str] = {i: c for i, c in session.execute(select(Store.id, Store.code))}
    last, orders, earned = 0, 0, 0
    while True:

        def run(session: Session, after: int = last) -> tuple[int | None, int, int]:
            todo = list(session.scalars(
                select(Order)
                .where(
                    Order.id > after, Order.member_id.is_not(None),
                    Order.status.in_(COUNTED_STATUSES),
                    Order.ordered_at >= since, Order.ordered_at <= now,
                    ~exists().where(PointsEntry.order_id == Order.id, PointsEntry.kind == "earn"),
                )
                .order_by(Order.id)
                .limit(batch)
            ))  # fmt: skip
            n = total = 0
            for order in todo:
                got = _earn(session, order, stores, now)
                n, total = n + (got > 0), total + got
            return (todo[-1].id if todo else None), n, total

        last_id, n, total = uow.run(run)
        if last_id is None:
            break
        last, orders, earned = last_id, orders + n, earned + total
    return Backfilled(orders, earned, points.expire_due(uow))


def _earn(session: Session, order: Order, stores: dict[int, str], now: datetime) -> int:
    assert order.member_id is not None
    # a refund of the order holds its member: the two take turns, and the order is read as the
    # refund left it (else its points would be earned on money already given back)
    members.hold_members(session, [order.member_id])
    session.refresh(order)
    if order.member_id is None or order.status not in COUNTED_STATUSES:
        return 0
    entry = points.award_for_order(
        session, member_id=order.member_id, order_id=order.id, channel=order.channel,
        store=stores.get(order.store_id) if order.store_id is not None else None,
        ordered_at=order.ordered_at,
        lines=[(li.category, li.line_total) for li in commerce.order_lines(session, order.id)],
        order_discount=order.discount_total, now=now,
    )  # fmt: skip
    if entry is None:
        return 0
    taken = 0
    if order.refunded_total > 0 and order.total > 0:
        share = min(order.refunded_total / order.total, Decimal(1))
        back = points.reverse_for_order(
            session, order_id=order.id, share=share, key=f"backfill:{order.id}:refunded",
            now=now, actor="backfill",
        )  # fmt: skip
        taken = back.points
    return entry.points - taken
