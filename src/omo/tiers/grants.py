"""A level given by hand (TIER-2): a VIP the brand promised their level when it moved from its
old system, a goodwill upgrade, a status match. The member holds the level through the day
given; then the review treats it as any level — kept if they qualify, else moved down after
the programme's grace to what they do qualify for. A grant never puts a member below what they
qualify for (the next sale would move them straight back up) nor below the level they hold (it
gives; only the review takes away), and a member who qualifies for more meanwhile moves up as
anyone does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.db import UnitOfWork
from omo.members import service as members
from omo.members.schemas import IdentifierIn
from omo.messaging import outbox
from omo.shared import clock
from omo.shared.errors import ValidationFailed
from omo.shared.pins import forget
from omo.shared.schemas import MAX_ID, StrictModel
from omo.tiers import policy
from omo.tiers.models import MemberTier, TierChange
from omo.tiers.policy import TierProgramme
from omo.tiers.schemas import MemberTierRead
from omo.tiers.service import fact_key, member_tier, programme_in_force, standing_of

MAX_YEARS = 5


class TierGrant(StrictModel):
    level: str = Field(min_length=1, max_length=32, description="a level code of the programme")
    until: date = Field(description="held through this day (the programme's time zone)")
    reason: str = Field(min_length=1, max_length=200, description="kept in the history")


class ImportedLevel(TierGrant):
    """A level from the programme before (`omo import tiers`): the member by id or identifiers."""

    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=10)


def grant(uow: UnitOfWork, *, member_id: int, req: TierGrant, actor: str | None) -> MemberTierRead:
    """Give the member `req.level` through `req.until`. Giving the same again changes nothing;
    a later `until` for the level they hold extends it."""

    def run(session: Session) -> int:
        now = clock.now()
        member = members.current_member(session, member_id).id
        members.hold_members(session, [member])  # a sale placing them waits, and then sees it
        p = programme_in_force(session)
        for field, message in problems(session, p, req, member, now):
            raise ValidationFailed(message, field=field)
        grant_in(session, p, req, member, actor=actor, now=now)
        return member

    held = uow.run(run)
    return member_tier(uow, member_id=held)


def grant_many(
    uow: UnitOfWork, *, items: Sequence[tuple[int, TierGrant]], actor: str | None
) -> tuple[int, int]:
    """Grants for many members in one transaction (an import, checked first with `problems`);
    returns how many changed something and how many were given already."""

    def run(session: Session) -> tuple[int, int]:
        now = clock.now()
        roots = [members.current_member(session, m).id for m, _req in items]
        members.hold_members(session, sorted(set(roots)))
        p = programme_in_force(session)
        done = []
        for m, (_id, req) in zip(roots, items, strict=True):
            for field, message in problems(session, p, req, m, now):  # a sale moved them since
                raise ValidationFailed(f"member {m}: {message}", field=field)
            done.append(grant_in(session, p, req, m, actor=actor, now=now))
        return sum(done), len(done) - sum(done)

    return uow.run(run)


def problems(
    session: Session, p: TierProgramme, req: TierGrant, member: int, now: datetime
) -> list[tuple[str, str]]:
    """What stands against this grant, as (field, reason) pairs."""
    if req.level not in {lv.code for lv in p.levels}:
        codes = ", ".join(lv.code for lv in p.levels)
        return [("level", f"no level {req.level!r}; one of {codes}")]
    today = now.astimezone(ZoneInfo(p.timezone)).date()
    if req.until < today:
        return [("until", "a day to come (or today)")]
    if req.until > _years_on(today, MAX_YEARS):
        return [("until", f"at most {MAX_YEARS} years ahead")]
    held = session.get(MemberTier, member)
    if held is not None and p.rank(req.level) < p.rank(held.level):
        lv = p.level(held.level)
        return [("level", f"the member holds {lv.name} ({lv.code}); a grant gives, it does not "
                          "take away: the review moves a member down")]  # fmt: skip
    if held is not None and held.level == req.level and _review_at(p, req.until) < held.review_at:
        day = (held.review_at - timedelta(days=1)).astimezone(ZoneInfo(p.timezone)).date()
        return [("until", f"the member holds {p.level(held.level).name} through {day} already; "
                          "a grant gives more time, not less")]  # fmt: skip
    reach = policy.qualified_level(p, standing_of(session, member_id=member, p=p, now=now))
    if p.rank(req.level) < reach:
        lv = p.levels[reach]
        return [("level", f"the member qualifies for {lv.name} ({lv.code}); a grant cannot put "
                          "them below it")]  # fmt: skip
    return []


def grant_in(
    session: Session, p: TierProgramme, req: TierGrant, member: int, *, actor: str | None,
    now: datetime,
) -> bool:  # fmt: skip
    """Write a grant `problems` found nothing against (the member held); False when it was
    given already."""
    review_at = _review_at(p, req.until)
    row = session.get(MemberTier, member, populate_existing=True)
    current = row.level if row is not None else p.levels[0].code
    if row is not None and row.level == req.level and row.review_at == review_at:
        return False
    fact = f"granted until {req.until.isoformat()} by {actor or 'staff'}"
    why = f"{fact}: {req.reason}"
    if row is None:
        session.add(MemberTier(member_id=member, level=req.level, since=now,
                               review_at=review_at, updated_at=now))  # fmt: skip
    else:
        if row.level != req.level:
            row.level, row.since = req.level, now
        row.review_at, row.updated_at = review_at, now
    if current != req.level:
        s = standing_of(session, member_id=member, p=p, now=now)
        record_change(session, member, current, req.level, why, s, now, fact=fact)
    # the reason stays in the tier history, which an erasure can reach; not in the audit log
    detail = {"level": req.level, "until": req.until.isoformat(), "from": current}
    audit.record(session, actor=actor, action="tier.grant", target=f"member:{member}",
                 detail=detail)  # fmt: skip
    session.flush()
    forget(session, "tier_rows")  # what the transaction had read of it is stale
    return True


def _review_at(p: TierProgramme, until: date) -> datetime:
    """The end of the day given, in the programme's zone: when the review may look again."""
    return datetime.combine(until + timedelta(days=1), time(0), tzinfo=ZoneInfo(p.timezone))


def record_change(
    session: Session, member: int, old: str, new: str, why: str, s: policy.Standing,
    now: datetime, *, fact: str,
) -> None:  # fmt: skip
    """The change in the tier history (`why`, with what staff wrote) and in the outbox (`fact`,
    without it: a fact queued for others is not where free text about a person travels)."""
    session.add(TierChange(
        member_id=member, from_level=old, to_level=new, reason=why, created_at=now,
        standing={"spend": str(s.spend), "points": s.points, "orders": s.orders,
                  "top_share": None if s.top_share is None else str(s.top_share)},
    ))  # fmt: skip
    outbox.publish(
        session, topic="TierChanged", key=fact_key(member, now), now=now,
        payload={"member_id": member, "from": old, "to": new, "reason": fact},
    )  # fmt: skip


def _years_on(day: date, years: int) -> date:
    """The same day `years` on; 29 February, in a year without one, the 28th (on a leap day
    `replace` raised, and every grant was a 500)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
