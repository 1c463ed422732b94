"""Use cases of the referrals area."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import Field
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from omo.db import UnitOfWork
from omo.members import service as members
from omo.points import service as points
from omo.referrals.models import Referral, ReferralCode
from omo.shared import clock
from omo.shared.codes import random_code
from omo.shared.errors import ValidationFailed
from omo.shared.prepared import Prepared
from omo.shared.rows import rows_of
from omo.shared.schemas import ReadModel

# the referee's first order must reach this to reward anyone (no rewards for a NT$1 order)
MIN_ORDER = Decimal(300)


class ReferralRead(ReadModel):
    referrer_id: int
    referee_id: int
    code: str
    status: str
    reason: str | None
    order_id: int | None
    created_at: datetime
    settled_at: datetime | None


class ReferralCodeRead(ReadModel):
    member_id: int
    code: str
    referred: list[ReferralRead] = Field(default_factory=list)


def code_for(uow: UnitOfWork, *, member_id: int) -> ReferralCodeRead:
    """The member's code (made on first ask) and whom it brought."""

    def run(session: Session) -> ReferralCodeRead:
        member = members.current_member(session, member_id)
        row = session.get(ReferralCode, member.id)
        if row is None:
            code = "R" + random_code(7)
            row = ReferralCode(member_id=member.id, code=code, created_at=clock.now())
            session.add(row)
            session.flush()
        brought = session.scalars(
            select(Referral).where(Referral.referrer_id == member.id).order_by(Referral.id)
        )
        return ReferralCodeRead(
            member_id=member.id, code=row.code,
            referred=[ReferralRead.model_validate(r) for r in brought],
        )  # fmt: skip

    return uow.run(run)


def attribute(session: Session, *, referee_id: int, code: str, now: datetime) -> Referral:
    """Record who brought a new member (at enrolment). A code that is unknown, the member's own,
    or one for a member already referred is refused."""
    row = session.scalar(select(ReferralCode).where(ReferralCode.code == code.strip().upper()))
    if row is None:
        raise ValidationFailed("no such referral code", field="referral_code", code="unknown_code")
    referrer = members.current_member(session, row.member_id).id
    if referrer == referee_id:
        raise ValidationFailed("a member cannot refer themselves", field="referral_code",
                               code="self_referral")  # fmt: skip
    if session.scalar(select(Referral).where(Referral.referee_id == referee_id)) is not None:
        raise ValidationFailed("this member was already referred", field="referral_code")
    referral = Referral(referrer_id=referrer, referee_id=referee_id, code=row.code,
                        status="pending", created_at=now)  # fmt: skip
    session.add(referral)
    session.flush()
    return referral


def reward_ahead(session: Session, *, member_id: int, amount: Decimal) -> None:
    """reward_on_order's read of a pending referral, read ahead (Prepared.ahead): a sale sends
    it with the tier's window."""
    if amount >= MIN_ORDER:
        _PENDING_FOR.ahead(session, {"referee": member_id})


def reward_on_order(
    session: Session, *, member_id: int, order_id: int, amount: Decimal, now: datetime
) -> Referral | None:
    """On the referee's first qualifying order, reward both sides with the programme's referral
    bonus — unless they have turned out to be one person (merged since)."""
    if amount < MIN_ORDER:
        return None
    # every sale asks; almost every answer is "none", so the row is loaded only when there is one
    pending = _PENDING_FOR.scalar(session, {"referee": member_id})  # with any unflushed
    referral = session.get(Referral, pending) if pending is not None else None
    if referral is None:
        return None
    referrer = members.current_member(session, referral.referrer_id).id
    referral.settled_at = now
    referral.order_id = order_id
    if referrer == member_id:
        referral.status, referral.reason = "rejected", "referrer and referee are one person"
        session.flush()
        return referral
    bonus = points.rules_in_force(session).referral_bonus
    for who, role in ((referrer, "referrer"), (member_id, "referee")):
        points.award_bonus(session, member_id=who, points=bonus,
                           key=f"referral:{referral.id}:{role}",
                           reason=f"referral ({role}) on order {order_id}", now=now)  # fmt: skip
    referral.status = "rewarded"
    session.flush()
    return referral


_REFERRALS = Referral.__table__.c
_PENDING_FOR = Prepared(
    select(_REFERRALS.id).where(
        _REFERRALS.referee_id == bindparam("referee"), _REFERRALS.status == "pending"
    )
)


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {
        "referral_codes": rows_of(session, ReferralCode, ReferralCode.member_id, member_ids),
        "referrals_made": rows_of(session, Referral, Referral.referrer_id, member_ids),
        "referred_by": rows_of(session, Referral, Referral.referee_id, member_ids),
    }
