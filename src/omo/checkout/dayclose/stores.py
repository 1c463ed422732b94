"""Every store's day side by side: for the back office, which stores sold what, what share of
it members paid, and which open store has nothing in OMO for the day (a till to ask after)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.checkout.dayclose.days import (
    Day,
    brand_day,
    enrolled_by_store,
    member_paid,
    of_day,
    sold,
    sum_cents,
)
from omo.checkout.dayclose.schemas import StoreLine, StoresDay
from omo.checkout.models import StoreDayClosing
from omo.commerce import service as commerce
from omo.commerce.models import Order, OrderRefund
from omo.db import UnitOfWork
from omo.points.models import PointsEntry
from omo.shared import clock
from omo.shared.errors import Forbidden
from omo.shared.money import ZERO, from_cents


def stores_day(uow: UnitOfWork, *, day: date, time_zone: str, principal: Principal) -> StoresDay:
    """Each store's sales, members' share, refunds, net and points on the brand's day."""
    if principal.store_id is not None:
        raise Forbidden(
            "this API key is bound to a store: it reads that store's day only "
            "(/stores/{code}/days/{day})", code="wrong_store",
        )  # fmt: skip
    d = brand_day(day, time_zone)
    with uow.read() as session:
        figures, times = _figures(session, d)
        closed: dict[int | None, datetime] = {s: clock.as_utc(at) for s, at in session.execute(
            select(StoreDayClosing.store_id, StoreDayClosing.closed_at)
            .where(StoreDayClosing.day == day, StoreDayClosing.reopened_at.is_(None)))}  # fmt: skip
    stores = commerce.get_stores(uow)
    names = {s.id: (s.id, s.code, s.name) for s in stores}
    shown: list[int | None] = [s.id for s in stores if s.is_active]
    shown += sorted(i for i in figures if i is not None and i not in shown)
    if None in figures:
        shown.append(None)
    lines = [_line(names.get(i, (i, None, None)) if i else _NONE, figures.get(i, {}),
                   times.get(i, (None, None))) for i in shown]  # fmt: skip
    for line in lines:
        line.closed_at = closed.get(line.store_id)
    together: dict[str, Any] = defaultdict(int)
    for sums in figures.values():
        for k, v in sums.items():
            together[k] += v
    return StoresDay(date=day, time_zone=time_zone, complete=d.complete, stores=lines,
                     total=_line(_NONE, together, _span(times.values())))  # fmt: skip


Times = tuple[datetime | None, datetime | None]


def _figures(
    session: Session, d: Day
) -> tuple[dict[int | None, dict[str, int]], dict[int | None, Times]]:
    """Per store id (None: orders of no store), the day's sums (money in cents), and its first
    and last sale."""
    out: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    times: dict[int | None, Times] = {}
    for store_id, n, members, paid, by_members, first, last in session.execute(
        select(Order.store_id, func.count(), func.count(Order.member_id), sum_cents(Order.total),
               member_paid(), func.min(Order.ordered_at), func.max(Order.ordered_at))
        .where(*of_day(d), Order.status != "cancelled")
        .group_by(Order.store_id)
    ):  # fmt: skip
        out[store_id].update(orders=n, member_orders=members, total=paid, member_total=by_members)
        times[store_id] = (first, last)
    for store_id, n in session.execute(enrolled_by_store(d)):
        out[store_id]["enrolled"] = n
    for store_id, n, amount in session.execute(  # at the till that gave them (跨店退貨)
        select(OrderRefund.store_id, func.count(), sum_cents(OrderRefund.amount))
        .where(OrderRefund.created_at >= d.since, OrderRefund.created_at < d.until)
        .group_by(OrderRefund.store_id)
    ):
        out[store_id].update(refunds=n, refunded=amount)
    for store_id, kind, points in session.execute(
        select(Order.store_id, PointsEntry.kind, func.sum(PointsEntry.points))
        .join(Order, Order.id == PointsEntry.order_id)
        .where(PointsEntry.order_id.in_(sold(d)), PointsEntry.kind.in_(("earn", "redeem")))
        .group_by(Order.store_id, PointsEntry.kind)
    ):
        out[store_id]["points_earned" if kind == "earn" else "points_redeemed"] = abs(int(points))
    return out, times


def _span(times: Iterable[Times]) -> Times:
    firsts = [t[0] for t in times if t[0] is not None]
    lasts = [t[1] for t in times if t[1] is not None]
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


_NONE: tuple[int | None, str | None, str | None] = (None, None, None)


def _line(
    store: tuple[int | None, str | None, str | None], sums: dict[str, int], times: Times
) -> StoreLine:
    total, by_members = from_cents(sums.get("total", 0)), from_cents(sums.get("member_total", 0))
    refunded = from_cents(sums.get("refunded", 0))
    return StoreLine(
        store_id=store[0], store=store[1], name=store[2], orders=sums.get("orders", 0),
        member_orders=sums.get("member_orders", 0), total=total, member_total=by_members,
        member_share=float(round(by_members / total, 4)) if total > ZERO else None,
        refunds=sums.get("refunds", 0), refunded=refunded, net=total - refunded,
        points_earned=sums.get("points_earned", 0),
        points_redeemed=sums.get("points_redeemed", 0),
        first_sale_at=times[0], last_sale_at=times[1], enrolled=sums.get("enrolled", 0),
    )  # fmt: skip
