"""Use cases of the referrals area."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy import Integer, bindparam, func, select, union_all, update
from sqlalchemy.orm import Session

from omo.commerce.models import Order
from omo.db import UnitOfWork
from omo.members import service as members
from omo.members.models import Member
from omo.messaging import outbox
from omo.points import service as points
from omo.points.models import PointsEntry
from omo.points.rules import PointsRules
from omo.referrals.models import Referral, ReferralCode
from omo.shared import clock
from omo.shared.codes import random_code
from omo.shared.errors import ValidationFailed
from omo.shared.prepared import Prepared
from omo.shared.rows import rows_of
from omo.shared.schemas import MoneyOut, ReadModel


class ReferralRead(ReadModel):
    id: int
    referrer_id: int
    referee_id: int
    code: str
    status: str = Field(
        description="pending; held (an identity review may find both sides one person); "
        "rewarded; rejected (one person, an older member, or the referee rewarded through "
        "another referral); lapsed (the first qualifying order came too late)"
    )
    reason: str | None
    order_id: int | None = Field(description="the qualifying order, once there is one")
    created_at: datetime
    settled_at: datetime | None
    referrer_points: int | None = Field(description="what the referrer was given")
    referee_points: int | None = Field(description="what the referee was given")


class ReferralCodeRead(ReadModel):
    member_id: int
    code: str
    link: str = Field(description="the shop's sign-up page with the code (OMO_REFERRAL_URL)")
    referrer_bonus: int = Field(description="points to the member for each friend who buys")
    referee_bonus: int = Field(description="points to the friend on their first order")
    min_order: MoneyOut = Field(description="the friend's first order must reach this")
    referred: list[ReferralRead] = Field(default_factory=list)


def code_for(uow: UnitOfWork, *, member_id: int, link: str) -> ReferralCodeRead:
    """The member's code (made on first ask), the programme's terms and whom it brought.
    `link`: the sign-up page, with `{code}` where the code goes. Read without the writer's lock
    once the code exists (the member card asks on every view)."""
    with uow.read() as session:
        found = _code_read(session, member_id, link)
    if found is not None:
        return found

    def run(session: Session) -> ReferralCodeRead:
        member_id_now = members.current_member(session, member_id).id
        members.hold_members(session, [member_id_now])  # two first asks make one code
        if session.get(ReferralCode, member_id_now, populate_existing=True) is None:
            session.add(ReferralCode(member_id=member_id_now, code="R" + random_code(7),
                                     created_at=clock.now()))  # fmt: skip
            session.flush()
        made = _code_read(session, member_id_now, link)
        assert made is not None
        return made

    return uow.run(run)


def _code_read(session: Session, member_id: int, link: str) -> ReferralCodeRead | None:
    member = members.current_member(session, member_id)
    row = session.get(ReferralCode, member.id)
    if row is None:
        return None
    codes_of = [member.id, *members.merged_ids_of(session, member.id)]
    brought = session.scalars(
        select(Referral).where(Referral.referrer_id.in_(codes_of)).order_by(Referral.id)
    )
    rules = points.rules_in_force(session)
    return ReferralCodeRead(
        member_id=member.id, code=row.code, link=link.replace("{code}", row.code),
        referrer_bonus=rules.referral_bonus,
        referee_bonus=rules.referral_bonus if rules.referee_bonus is None
        else rules.referee_bonus,
        min_order=rules.referral_min_order,
        referred=[ReferralRead.model_validate(r) for r in brought],
    )  # fmt: skip


def list_referrals(
    uow: UnitOfWork, *, status: str | None, member_id: int | None, limit: int, before: int | None
) -> list[ReferralRead]:
    """The newest referrals first, for a merchant's review: by status, and by a member on
    either side; `before` (a referral id) pages back."""
    stmt = select(Referral).order_by(Referral.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Referral.status == status)
    if member_id is not None:
        stmt = stmt.where((Referral.referrer_id == member_id) | (Referral.referee_id == member_id))
    if before is not None:
        stmt = stmt.where(Referral.id < before)
    with uow.read() as session:
        return [ReferralRead.model_validate(r) for r in session.scalars(stmt)]


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
    if amount >= points.rules_in_force(session).referral_min_order:
        _PENDING_FOR.ahead(session, {"referee": member_id})


# the guards' reasons for a rejection that an undone merge can lift
ONE_PERSON = "referrer and referee are one person"
OLDER_MEMBER = "the referee was already a member"

# whether an identity review is open on two members being one person (its id): identity's
# question, which the caller (ingest, identity) passes down — this area does not call identity
OpenReview = Callable[[Session, int, int], int | None]


def reward_on_order(
    session: Session, *, member_id: int, order_id: int, amount: Decimal, ordered_at: datetime,
    now: datetime, open_review: OpenReview,
) -> Referral | None:  # fmt: skip
    """On the referee's first qualifying order, reward both sides with the programme's bonuses,
    pending until the order's return window passes — unless they have turned out to be one
    person (merged since), or the order came too late (the programme's referral_days). While an
    identity review may yet find them one person, the referral is held on the order."""
    rules = points.rules_in_force(session)
    if amount < rules.referral_min_order:
        return None
    # every sale asks; almost every answer is "none", so the row is loaded only when there is one
    pending = _PENDING_FOR.scalar(session, {"referee": member_id})  # with any unflushed
    referral = session.get(Referral, pending) if pending is not None else None
    if referral is None:
        return None
    referrer = members.current_member(session, referral.referrer_id).id
    referral.settled_at, referral.order_id, referral.reason = now, order_id, None
    if referrer == member_id:
        referral.status, referral.reason = "rejected", ONE_PERSON
    elif referral.referee_id != member_id and (
        members.get_member(session, member_id).joined_at < referral.created_at
    ):
        referral.status = "rejected"
        referral.reason = f"{OLDER_MEMBER} (merged into member {member_id})"
    elif rules.referral_days and ordered_at > referral.created_at + timedelta(
        days=rules.referral_days
    ):
        referral.status = "lapsed"
        referral.reason = f"first qualifying order after {rules.referral_days} days"
    elif (review := open_review(session, referrer, member_id)) is not None:
        referral.status, referral.settled_at = "held", None
        referral.reason = f"possibly one person: identity review {review} is open"
    else:
        _reward(session, referral, referrer=referrer, referee=member_id, rules=rules,
                ordered_at=ordered_at, now=now)  # fmt: skip
        # one person referred twice (two members merged since, each with a referral) is
        # rewarded once
        session.flush()
        while (twice := _PENDING_FOR.scalar(session, {"referee": member_id})) is not None:
            other = session.get_one(Referral, twice)
            other.status, other.settled_at = "rejected", now
            other.reason = f"the referee was rewarded through referral {referral.id}"
            session.flush()
    session.flush()
    return referral


def settle_held(
    session: Session, *, member_ids: Sequence[int] | None, now: datetime,
    open_review: OpenReview,
) -> int:  # fmt: skip
    """Settle the referrals held on one of these members (or a member merged into one of
    them; None: every held referral, after an identity run) whose identity review is no longer
    open — decided, merged some other way, or no longer proposed by a run: one person now
    (merged) → rejected; two people → rewarded on the order that qualified, if it still does
    after any return, else waiting for one again. Returns how many were looked at."""
    stmt = select(Referral).where(Referral.status == "held").order_by(Referral.id)
    if member_ids is not None:
        tree = members.merge_tree(session, member_ids)
        stmt = stmt.where(Referral.referrer_id.in_(tree) | Referral.referee_id.in_(tree))
    held = session.scalars(stmt).all()
    rules = points.rules_in_force(session)
    for referral in held:
        referrer = members.current_member(session, referral.referrer_id).id
        referee = members.current_member(session, referral.referee_id).id
        # a refund of the order holds its member: the two take turns, and the order is read
        # as the refund left it
        members.hold_members(session, [referrer, referee])
        order = (  # a held referral has its order; a row written by hand may not
            session.get(Order, referral.order_id, populate_existing=True)
            if referral.order_id is not None
            else None
        )
        referral.settled_at, referral.reason = now, None
        if referrer == referee:
            referral.status, referral.reason = "rejected", ONE_PERSON
        elif order is None or order.total - order.refunded_total < rules.referral_min_order:
            referral.status, referral.order_id, referral.settled_at = "pending", None, None
        elif (review := open_review(session, referrer, referee)) is not None:
            referral.settled_at = None  # another review of the pair: still held
            referral.reason = f"possibly one person: identity review {review} is open"
        else:
            _reward(session, referral, referrer=referrer, referee=referee, rules=rules,
                    ordered_at=order.ordered_at, now=now)  # fmt: skip
    session.flush()
    return len(held)


def reopen_after_split(
    session: Session, *, member_ids: Sequence[int], merge_id: int, now: datetime,
    open_review: OpenReview,
) -> list[Referral]:  # fmt: skip
    """An undone merge made these members two people again: a referral it had rejected (its
    two sides one person, or its referee an older member) whose guard no longer holds waits
    again — and is settled at once on the order it was refused on, if that order is the
    referee's and still qualifies. A referee "rewarded through" another referral stays
    rejected: that bonus stayed with the merge's survivor. Returns the referrals reopened."""
    tree = members.merge_tree(session, member_ids)
    refused = session.scalars(
        select(Referral).where(
            Referral.status == "rejected",
            Referral.referrer_id.in_(tree) | Referral.referee_id.in_(tree),
        ).order_by(Referral.id)
    ).all()  # fmt: skip
    reopened = []
    for referral in refused:
        reason = referral.reason or ""
        if not reason.startswith((ONE_PERSON, OLDER_MEMBER)):
            continue
        referrer = members.current_member(session, referral.referrer_id).id
        referee = members.current_member(session, referral.referee_id)
        if referrer == referee.id or (
            referee.id != referral.referee_id and referee.joined_at < referral.created_at
        ):
            continue  # still one person, or still an older member
        order_id = referral.order_id
        referral.status, referral.order_id, referral.settled_at = "pending", None, None
        referral.reason = f"merge {merge_id} was undone: two people again"
        session.flush()
        reopened.append(referral)
        if order_id is None:
            continue
        members.hold_members(session, [referrer, referee.id])  # as settle_held: after a return
        order = session.get(Order, order_id, populate_existing=True)
        if (
            order is not None
            and order.status != "cancelled"
            and order.member_id is not None
            and members.current_member(session, order.member_id).id == referee.id
        ):
            reward_on_order(
                session, member_id=referee.id, order_id=order.id,
                amount=order.total - order.refunded_total, ordered_at=order.ordered_at,
                now=now, open_review=open_review,
            )  # fmt: skip
    return reopened


def _reward(
    session: Session, referral: Referral, *, referrer: int, referee: int, rules: PointsRules,
    ordered_at: datetime, now: datetime,
) -> None:  # fmt: skip
    order_id = referral.order_id
    referee_bonus = rules.referral_bonus if rules.referee_bonus is None else rules.referee_bonus
    referrer_bonus = rules.referral_bonus
    if (
        rules.referrals_per_year is not None
        and _rewarded_this_year(session, referrer, rules, now) >= rules.referrals_per_year
    ):
        referrer_bonus = 0
        referral.reason = f"the referrer's {rules.referrals_per_year} a year were reached"
    for who, role, bonus in (
        (referrer, "referrer", referrer_bonus), (referee, "referee", referee_bonus),
    ):  # fmt: skip
        points.award_bonus(session, member_id=who, points=bonus,
                           key=_bonus_key(referral, role, order_id),
                           reason=f"referral ({role}) on order {order_id}", now=now,
                           order_id=order_id, ordered_at=ordered_at)  # fmt: skip
    referral.status = "rewarded"
    referral.referrer_points, referral.referee_points = referrer_bonus, referee_bonus
    outbox.publish(
        session, topic="ReferralRewarded", key=f"referral:{referral.id}:order:{order_id}",
        now=now, payload={"referral_id": referral.id, "referrer_id": referrer,
                          "referee_id": referee, "order_id": order_id,
                          "referrer_points": referrer_bonus, "referee_points": referee_bonus},
    )  # fmt: skip


def _rewarded_this_year(session: Session, referrer: int, rules: PointsRules, now: datetime) -> int:
    """Referrals that gave this referrer a bonus in the calendar year of `now` (the programme's
    zone), through this member's code or the code of a member merged into them. The referrer's
    row is held first, so two at once count in turn."""
    members.hold_members(session, [referrer])
    zone = ZoneInfo(rules.timezone)
    start = datetime(now.astimezone(zone).year, 1, 1, tzinfo=zone).astimezone(UTC)
    return int(
        session.scalar(
            select(func.count()).select_from(Referral).where(
                # with those made through members merged into the referrer
                Referral.referrer_id.in_([referrer, *members.merged_ids_of(session, referrer)]),
                Referral.status == "rewarded",
                Referral.referrer_points > 0, Referral.settled_at >= start,
            )
        ) or 0
    )  # fmt: skip


def _bonus_key(referral: Referral, role: str, order_id: int | None) -> str:
    return f"referral:{referral.id}:{role}:order:{order_id}"


def on_refund(
    session: Session, *, order_id: int, kept: Decimal, key: str, now: datetime,
    actor: str | None,
) -> Referral | None:  # fmt: skip
    """A refund of a referral's qualifying order: when what is kept of it no longer reaches the
    programme's minimum, both bonuses are taken back (from their pending lots while the return
    window runs, so nothing has been spent) and the referral waits for a qualifying order
    again."""
    referral = session.scalar(
        select(Referral).where(Referral.order_id == order_id, Referral.status == "rewarded")
    )
    if referral is None or kept >= points.rules_in_force(session).referral_min_order:
        return None
    for role in ("referrer", "referee"):
        for bonus_key in (_bonus_key(referral, role, order_id), f"referral:{referral.id}:{role}"):
            if points.take_back_bonus(session, bonus_key=bonus_key, key=f"{key}:{role}",
                                      reason=f"referral ({role}): order {order_id} returned",
                                      now=now, actor=actor):  # fmt: skip
                break
    referral.status, referral.order_id, referral.settled_at = "pending", None, None
    referral.referrer_points = referral.referee_points = None
    referral.reason = f"order {order_id} was returned; the bonuses were taken back"
    outbox.publish(
        session, topic="ReferralRevoked", key=f"{key}:referral", now=now,
        payload={"referral_id": referral.id, "referrer_id": referral.referrer_id,
                 "referee_id": referral.referee_id, "order_id": order_id},
    )  # fmt: skip
    session.flush()
    return referral


_REFERRALS = Referral.__table__.c
_MEMBERS = Member.__table__.c
# the member's own referral, or one of a member merged into it (a referee who turned out to be
# someone else): one index probe more, on the members merged into this one
_PENDING_FOR = Prepared(
    select(_REFERRALS.id)
    .where(
        _REFERRALS.referee_id.in_(
            union_all(
                select(bindparam("referee", type_=Integer)),
                select(_MEMBERS.id).where(_MEMBERS.merged_into_id == bindparam("referee")),
            )
        ),
        _REFERRALS.status == "pending",
    )
    .order_by(_REFERRALS.id)
    .limit(1)
)


# an order placed inside the window may be recorded days later (a marketplace's sync)
LATE_ORDERS = timedelta(days=7)


def lapse_due(uow: UnitOfWork) -> int:
    """Mark lapsed the pending referrals whose time ran out (the programme's referral_days, and
    a week's grace for orders recorded late), so that the merchant's figures count them. Run
    daily; safe to run again. Returns how many lapsed."""

    def run(session: Session) -> int:
        days = points.rules_in_force(session).referral_days
        if not days:
            return 0
        now = clock.now()
        done = session.execute(
            update(Referral)
            .where(
                Referral.status == "pending",
                Referral.created_at < now - timedelta(days=days) - LATE_ORDERS,
            )
            .values(
                status="lapsed", settled_at=now, reason=f"no qualifying order within {days} days"
            )
        )
        return int(getattr(done, "rowcount", 0) or 0)

    return uow.run(run)


def check_referrals(session: Session) -> list[str]:
    """Differences between referrals and the ledger (`omo check`): each side of a rewarded
    referral holds a bonus of what the referral says it was given, and nothing else; a referral
    not rewarded (or taken back) holds none that was not taken back."""
    bonuses: dict[tuple[int, str], list[PointsEntry]] = defaultdict(list)
    for e in session.scalars(
        select(PointsEntry).where(
            PointsEntry.idempotency_key.like("referral:%"), PointsEntry.kind == "bonus"
        )
    ):
        _, rid, role, *_ = e.idempotency_key.split(":")
        bonuses[int(rid), role].append(e)
    taken_back = set(
        session.scalars(
            select(PointsEntry.reverses_id).where(
                PointsEntry.kind == "reverse", PointsEntry.reverses_id.is_not(None)
            )
        )
    )
    problems: list[str] = []
    for r in session.scalars(select(Referral).order_by(Referral.id)):
        for role, given in (("referrer", r.referrer_points), ("referee", r.referee_points)):
            held = sum(e.points for e in bonuses[r.id, role] if e.id not in taken_back)
            want = (given or 0) if r.status == "rewarded" else 0
            if r.status == "rewarded" and given is None:
                problems.append(f"referral {r.id} (rewarded): what the {role} was given is "
                                "not recorded")  # fmt: skip
            elif held != want:
                problems.append(f"referral {r.id} ({r.status}): the {role} holds a bonus of "
                                f"{held}, the referral says {want}")  # fmt: skip
    return problems


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {
        "referral_codes": rows_of(session, ReferralCode, ReferralCode.member_id, member_ids),
        "referrals_made": rows_of(session, Referral, Referral.referrer_id, member_ids),
        "referred_by": rows_of(session, Referral, Referral.referee_id, member_ids),
    }
