"""A store's day as the API and the store page give it: the figures, the refunds its till
gave one by one, the holes in its receipt numbers, and its closing with what changed since."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from omo.apikeys.service import Principal
from omo.checkout.dayclose import figures
from omo.checkout.dayclose.closing import closing_of
from omo.checkout.dayclose.days import enrolled_by_store, of_day, store_day_of
from omo.checkout.dayclose.gaps import receipt_gaps
from omo.checkout.dayclose.reopening import reopened_of
from omo.checkout.dayclose.schemas import DayTotals, StoreDay
from omo.commerce.models import Order
from omo.db import UnitOfWork


def store_day(
    uow: UnitOfWork, *, store: str, day: date, time_zone: str, principal: Principal
) -> StoreDay:
    """What the store sold, refunded, earned and redeemed on the brand's day `day`."""
    with uow.read() as session:
        d = store_day_of(session, store, day, time_zone, principal)
        sales, refunds = figures.sales_of(session, d), figures.refunds_of(session, d)
        return StoreDay(
            store=store, date=d.day, time_zone=time_zone, since=d.since, until=d.until,
            complete=d.complete, sales=sales, refunds=refunds,
            net=sales.total - refunds.amount, coupons=figures.coupons_of(session, d),
            enrolled=sum(n for _s, n in session.execute(enrolled_by_store(d))),
            refunds_given=figures.refunds_given(session, d),
            receipt_gaps=receipt_gaps(session.scalars(
                select(Order.external_id).where(*of_day(d), Order.channel == "pos"))),
            closing=closing_of(session, d, DayTotals.of(sales, refunds)),
            reopened=reopened_of(session, d),
        )  # fmt: skip
