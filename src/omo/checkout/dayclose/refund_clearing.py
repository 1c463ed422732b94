"""Refunds cleared between stores (跨店退貨清算): goods bought at one store (or online) and
brought back to another, whose till paid the money out. Over a period, per pair of the store
that sold and the store that refunded, how many such refunds and how much: what the selling
store (the web shop, for orders of no store) owes the refunding one in a franchise chain."""

from __future__ import annotations

from datetime import date

from pydantic import Field
from sqlalchemy import func, select

from omo.apikeys.service import Principal
from omo.checkout.dayclose.clearing import chain_period
from omo.checkout.dayclose.days import sum_cents
from omo.commerce import service as commerce
from omo.commerce.models import Order, OrderRefund
from omo.db import UnitOfWork
from omo.shared.money import from_cents
from omo.shared.schemas import MoneyOut, ReadModel


class RefundPair(ReadModel):
    sold_at: str | None = Field(description="the store that sold (none: online, delivered)")
    refunded_at: str = Field(description="the store whose till paid the refund")
    refunds: int
    amount: MoneyOut = Field(description="owed by the selling store to the refunding one")


class RefundsClearing(ReadModel):
    start: date
    end: date = Field(description="the day after the last")
    time_zone: str
    pairs: list[RefundPair] = Field(description="by selling store, then refunding store")
    refunds: int
    amount: MoneyOut


def refunds_clearing(
    uow: UnitOfWork, *, start: date, end: date, time_zone: str, principal: Principal
) -> RefundsClearing:
    since, until = chain_period(start, end, time_zone, principal)
    with uow.read() as session:
        codes = {s.id: s.code for s in commerce.list_stores(session)}
        rows = session.execute(
            select(Order.store_id, OrderRefund.store_id, func.count(),
                   sum_cents(OrderRefund.amount))
            .join(Order, Order.id == OrderRefund.order_id)
            .where(OrderRefund.created_at >= since, OrderRefund.created_at < until,
                   OrderRefund.store_id.is_not(None),
                   Order.store_id.is_distinct_from(OrderRefund.store_id))
            .group_by(Order.store_id, OrderRefund.store_id)
        ).all()  # fmt: skip
    pairs = sorted(
        (RefundPair(sold_at=codes.get(sold) if sold else None, refunded_at=codes[at],
                    refunds=n, amount=from_cents(cents))
         for sold, at, n, cents in rows),
        key=lambda p: (p.sold_at is None, p.sold_at or "", p.refunded_at),
    )  # fmt: skip
    return RefundsClearing(
        start=start, end=end, time_zone=time_zone, pairs=pairs,
        refunds=sum(p.refunds for p in pairs), amount=sum((p.amount for p in pairs), from_cents(0)),
    )  # fmt: skip


def as_csv(c: RefundsClearing) -> str:
    """The pairs and the total as CSV, for a spreadsheet (an order of no store: sold_at empty)."""
    out = ["sold_at,refunded_at,refunds,amount"]
    out += [f"{p.sold_at or ''},{p.refunded_at},{p.refunds},{p.amount:.2f}" for p in c.pairs]
    out.append(f"ALL,,{c.refunds},{c.amount:.2f}")
    return "\r\n".join(out) + "\r\n"
