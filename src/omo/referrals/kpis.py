"""What the referral programme brought over a period (REF-1): referrals made, how they settled,
the share of those made that turned into a rewarded first order, the points given and what the
qualifying orders were worth — and who brought the most."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field
from sqlalchemy import ColumnElement, and_, case, func, select

from omo.analytics.periods import period, share
from omo.commerce.models import Order
from omo.db import UnitOfWork
from omo.referrals.models import Referral
from omo.shared.schemas import MoneyOut, ReadModel

TOP = 10


class TopReferrer(ReadModel):
    member_id: int
    rewarded: int


class ReferralSummary(ReadModel):
    since: datetime
    until: datetime
    made: int = Field(description="referrals made (friends who joined with a code)")
    rewarded: int = Field(description="settled with a reward in the period (and still so)")
    rejected: int = Field(description="settled without: one person, or already a member")
    lapsed: int = Field(description="first qualifying order too late")
    pending: int = Field(description="of those made in the period, still waiting now")
    held: int = Field(description="held now on an open identity review (possibly one person)")
    conversion: float = Field(description="of those made in the period, the share rewarded now")
    points_given: int = Field(description="both sides' bonuses of those rewarded in the period")
    revenue: MoneyOut = Field(description="the qualifying orders, less what was refunded")
    top_referrers: list[TopReferrer]


def summary(uow: UnitOfWork, *, since: datetime | None, until: datetime | None) -> ReferralSummary:
    """[since, until), by default the 30 days to now."""
    since, until = period(since, until)
    r = Referral
    settled = and_(r.settled_at >= since, r.settled_at < until)
    made = and_(r.created_at >= since, r.created_at < until)

    def count(when: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((when, 1), else_=0)), 0)

    points = func.coalesce(r.referrer_points, 0) + func.coalesce(r.referee_points, 0)
    rewarded_in = and_(settled, r.status == "rewarded")
    given = func.coalesce(func.sum(case((rewarded_in, points), else_=0)), 0)
    with uow.read() as session:
        row = session.execute(
            select(
                count(made),
                count(rewarded_in),
                count(and_(settled, r.status == "rejected")),
                count(and_(settled, r.status == "lapsed")),
                count(and_(made, r.status == "pending")),
                count(and_(made, r.status == "rewarded")),
                count(r.status == "held"),
                given,
            )
        ).one()
        revenue = session.scalar(
            # the money type, so that its stored form (SQLite: cents) is read back as money
            select(func.sum(Order.total - Order.refunded_total, type_=Order.total.type))
            .select_from(r)
            .join(Order, Order.id == r.order_id)
            .where(rewarded_in)
        )
        top = session.execute(
            select(r.referrer_id, func.count())
            .where(rewarded_in)
            .group_by(r.referrer_id)
            .order_by(func.count().desc(), r.referrer_id)
            .limit(TOP)
        ).all()
    n_made, rewarded, rejected, lapsed, pending, made_rewarded, held, points_given = (
        int(v) for v in row
    )
    return ReferralSummary(
        since=since, until=until, made=n_made, rewarded=rewarded, rejected=rejected,
        lapsed=lapsed, pending=pending, held=held, conversion=share(made_rewarded, n_made),
        points_given=points_given, revenue=Decimal(revenue or 0),
        top_referrers=[TopReferrer(member_id=m, rewarded=n) for m, n in top],
    )  # fmt: skip
