"""The monthly free shipping of a member's level (TIER-3): how many shipments are left this
month, a sale using one, a whole refund giving it back.

A month is the calendar month in the tier programme's zone. Uses are counted through their
orders, so a merge, which moves the absorbed member's orders, brings their uses along, and an
undo takes them back. A sale counts while it holds its member (checkout's commit locks the
member's row first; SQLite writes one at a time), so two tills never both take the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from omo.commerce.models import Order
from omo.shared.prepared import Prepared
from omo.tiers.models import TierBenefitUse

BENEFIT = "free_shipping"

_USES = TierBenefitUse.__table__
_ORDERS = Order.__table__
_USED = Prepared(
    select(func.count())
    .select_from(_USES.join(_ORDERS, _ORDERS.c.id == _USES.c.order_id))
    .where(
        _ORDERS.c.member_id == bindparam("member_id"),
        _USES.c.benefit == BENEFIT,
        _USES.c.period == bindparam("period"),
        _USES.c.given_back_at.is_(None),
    )
)
_USE = Prepared(insert(TierBenefitUse))
_GIVE_BACK = Prepared(
    update(TierBenefitUse)
    .where(_USES.c.order_id == bindparam("order_id"), _USES.c.given_back_at.is_(None))
    .values(given_back_at=bindparam("at"))
)


@dataclass(frozen=True)
class Quota:
    period: str  # "2026-12"
    allowed: int  # shipments a month at the member's level now
    used: int  # this month's, not given back (at any level held this month)

    @property
    def left(self) -> int:
        return max(0, self.allowed - self.used)


def period_of(now: datetime, zone: str) -> str:
    """The month `now` falls in, in the programme's zone."""
    return now.astimezone(ZoneInfo(zone)).strftime("%Y-%m")  # ZoneInfo keeps each zone made


def quota_of(session: Session, *, member_id: int, allowed: int, zone: str, now: datetime) -> Quota:
    period = period_of(now, zone)
    used = _USED.scalar(session, {"member_id": member_id, "period": period})
    return Quota(period, allowed, int(used or 0))


def use(session: Session, *, order_id: int, period: str, amount: Decimal, now: datetime) -> None:
    """The order used one of its member's shipments of `period`, worth `amount`."""
    _USE.execute_later(
        session,
        {"order_id": order_id, "benefit": BENEFIT, "period": period, "amount": amount,
         "created_at": now, "given_back_at": None},
    )  # fmt: skip


def give_back(session: Session, *, order_id: int, now: datetime) -> bool:
    """A whole refund: the order's shipment counts no more. Whether it had used one."""
    return _GIVE_BACK.execute(session, {"order_id": order_id, "at": now}) > 0
