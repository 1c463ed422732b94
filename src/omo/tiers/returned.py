"""An upgrade taken back when the orders that earned it are returned (TIER-2, CHK-3).

A member who buys their way up and brings the goods back does not keep the level until its
review: the refund looks at the upgrades made since the returned order and, when the member no
longer qualifies, puts them back where they were (or as high as they still reach) at once. A
downgrade for buying too little still waits for review and grace; a grant, a review's
downgrade or a level by rank since the order leaves the level to the review. The monthly gifts
of the levels taken back, issued since the upgrade and not used, are withdrawn with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.coupons import service as coupons
from omo.shared.pins import forget
from omo.tiers import policy
from omo.tiers.grants import record_change
from omo.tiers.models import MemberTier, TierChange
from omo.tiers.policy import TierProgramme
from omo.tiers.service import fact_key, programme_in_force, standing_of

UPGRADE = "upgrade: "
RETURNED = "upgrade returned: "


def standing_before(session: Session, *, member_id: int, now: datetime) -> policy.Standing:
    """The member's standing before a refund changes it (on_return's `was`)."""
    return standing_of(session, member_id=member_id, p=programme_in_force(session), now=now)


@dataclass(frozen=True)
class Returned:
    level: str  # the level the member falls back to
    gifts_withdrawn: int  # monthly gift coupons of the levels taken back, unused, voided
    upgrades: tuple[str, ...] = ()  # the TierChanged facts of the upgrades taken back


def on_return(
    session: Session, *, member_id: int, ordered_at: datetime, was: policy.Standing,
    now: datetime,
) -> Returned | None:  # fmt: skip
    """After a refund of an order made at `ordered_at` (in its transaction, the member held;
    `was`: their standing before it): the level the member falls back to, or None when it
    stays."""
    p = programme_in_force(session)
    row = session.get(MemberTier, member_id, populate_existing=True)
    if row is None:
        return None
    chain = list(
        session.scalars(
            select(TierChange)
            .where(TierChange.member_id == member_id, TierChange.created_at >= ordered_at)
            .order_by(TierChange.created_at, TierChange.id)
        )
    )
    if (
        not chain
        or chain[-1].to_level != row.level
        or not all(c.reason.startswith((UPGRADE, RETURNED)) for c in chain)
        or not {row.level, chain[0].from_level} <= {lv.code for lv in p.levels}
    ):
        return None
    before = chain[0].from_level
    assert before is not None
    s = standing_of(session, member_id=member_id, p=p, now=now)
    back = policy.returned(p, current=row.level, before=before, was=was, standing=s)
    if back is None:
        return None
    since, review_at = _held_back(session, p, member_id, back, chain)
    why = policy.returned_why(p.level(row.level), s)
    record_change(session, member_id, row.level, back, why, s, now, fact=why)
    row.level, row.since, row.review_at, row.updated_at = back, since, review_at, now
    session.flush()
    forget(session, "tier_rows")  # what the transaction had read of it is stale
    rank = {lv.code: n for n, lv in enumerate(p.levels)}
    above = [
        c for c in chain
        if c.reason.startswith(UPGRADE) and rank.get(c.to_level, -1) > rank[back]
    ]  # fmt: skip
    return Returned(back, _withdraw_gifts(session, p, member_id, back, above),
                    tuple(fact_key(member_id, c.created_at) for c in above))  # fmt: skip


def _withdraw_gifts(
    session: Session, p: TierProgramme, member_id: int, back: str, above: list[TierChange]
) -> int:
    """Void the unused monthly gifts of the levels above `back` issued since the member first
    rose above it (`above`: the upgrades past it taken back); a template `back` gives as well
    stays."""
    if not above:
        return 0
    kept = p.level(back).benefits.monthly_gift
    lost = {
        gift for c in above
        if (gift := p.level(c.to_level).benefits.monthly_gift) is not None and gift != kept
    }  # fmt: skip
    if not lost:
        return 0
    return coupons.withdraw_unused(
        session, member_id=member_id, template_codes=sorted(lost), key="tier-gift",
        issued_since=above[0].created_at,
    )  # fmt: skip


def _held_back(
    session: Session, p: TierProgramme, member_id: int, back: str, chain: list[TierChange]
) -> tuple[datetime, datetime]:
    """Since when the member holds `back`, and its review: as reached within the upgrades
    undone, or as held before them (its review renewed as it would have been until then)."""
    reached = [c.created_at for c in chain if c.to_level == back and c.reason.startswith(UPGRADE)]
    if reached:
        return reached[0], policy.review_date(p, reached[0])
    start = chain[0].created_at
    earlier = session.scalar(
        select(TierChange.created_at)
        .where(TierChange.member_id == member_id, TierChange.created_at < start,
               TierChange.to_level == back)
        .order_by(TierChange.created_at.desc(), TierChange.id.desc())
        .limit(1)
    )  # fmt: skip
    since = earlier or start
    review = policy.review_date(p, since)
    while review <= start:  # renewed at each review it met before the upgrade
        review = policy.review_date(p, review)
    return since, review
