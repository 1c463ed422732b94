"""The monthly gift of a tier level (TIER-3): a coupon of the level's template, issued once a
month to every active member on the level, by a daily job (`omo tier-gifts`, safe to run again:
the issue key names the month, in the programme's zone).

A member who moves up during a month also gets the higher level's gift that month. A template
gives as many gifts to one member as its `per_member_limit`; one who has had them all, or a
template out of budget, is counted among the refusals by reason, not retried.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from omo.coupons import service as coupons
from omo.db import UnitOfWork
from omo.members.models import Member
from omo.shared import clock
from omo.tiers.models import MemberTier
from omo.tiers.service import programme_in_force
from omo.tiers.shipping import period_of


@dataclass(frozen=True)
class GiftRun:
    period: str  # "2026-12"
    holding: dict[str, int] = field(default_factory=dict)  # template → members with this month's
    refused: dict[str, int] = field(default_factory=dict)  # reason → members


def give_monthly(uow: UnitOfWork, *, batch: int = 500) -> GiftRun:
    with uow.read() as session:
        p = programme_in_force(session)
        period = period_of(clock.now(), p.timezone)
        gifts = {lv.code: lv.benefits.monthly_gift for lv in p.levels if lv.benefits.monthly_gift}
        if not gifts:
            return GiftRun(period)
        found = session.execute(
            select(Member.id, MemberTier.level)
            .outerjoin(MemberTier, MemberTier.member_id == Member.id)
            .where(Member.status == "active")
            .order_by(Member.id)
        ).all()
    wanted: dict[str, list[int]] = defaultdict(list)
    for member_id, level in found:
        gift = gifts.get(p.level(level).code if level else p.levels[0].code)
        if gift:
            wanted[gift].append(member_id)
    holding: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for template, ids in wanted.items():
        for start in range(0, len(ids), batch):
            done = coupons.issue(
                uow, template_code=template, member_ids=ids[start : start + batch],
                key=f"tier-gift:{period}",
            )  # fmt: skip
            holding[template] += len(done.issued)
            refused.update(done.refused.values())
    return GiftRun(period, {t: n for t, n in holding.items() if n}, dict(refused))
