"""What a merchant owes each partner (PTS-2 partner rewards): per partner reward over a
period, the units redeemed, used at the partner (the bill), cancelled, and still outstanding
at the period's end."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from omo.analytics.periods import period
from omo.db import UnitOfWork
from omo.rewards.models import Reward, RewardRedemption
from omo.rewards.schemas import SettlementRow


def partner_settlement(
    uow: UnitOfWork, *, since: datetime | None, until: datetime | None, partner: str | None
) -> list[SettlementRow]:
    """[since, until), by default the 30 days to now. Each event is counted in the period it
    happened in, whatever became of the redemption later; `outstanding` is as it stood at
    `until`. Rewards with nothing to show for the period are left out."""
    since, until = period(since, until)
    r = RewardRedemption

    def units(when: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((when, r.quantity), else_=0)), 0)

    def within(column: InstrumentedAttribute[datetime | None]) -> ColumnElement[bool]:
        return and_(column >= since, column < until)

    stmt = (
        select(
            Reward.partner,
            Reward.code,
            Reward.name,
            Reward.points,
            units(within(r.created_at)),
            units(within(r.fulfilled_at)),
            units(within(r.cancelled_at)),
            units(
                and_(
                    r.created_at < until,
                    or_(r.fulfilled_at.is_(None), r.fulfilled_at >= until),
                    or_(r.cancelled_at.is_(None), r.cancelled_at >= until),
                )
            ),
        )
        .join(r, r.reward_id == Reward.id)
        .where(r.voucher.is_not(None))  # redeemed as a partner's reward
        .group_by(Reward.id, Reward.partner, Reward.code, Reward.name, Reward.points)
        .order_by(Reward.partner, Reward.code)
    )
    if partner is not None:
        stmt = stmt.where(Reward.partner == partner)
    with uow.read() as session:
        return [
            SettlementRow(
                partner=p or "",
                reward=code,
                name=name,
                points=pts,
                issued=int(issued),
                used=int(used),
                cancelled=int(cancelled),
                outstanding=int(out),
            )
            for p, code, name, pts, issued, used, cancelled, out in session.execute(stmt)
            if issued or used or cancelled or out
        ]
