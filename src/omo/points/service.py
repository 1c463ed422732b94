"""Use cases of the points area: the programme, earning on orders, redeeming, adjusting,
expiring, reversing, and what a member sees (PTS-1…4)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.orm import Session, aliased

from omo.audit import service as audit
from omo.db import UnitOfWork
from omo.members import service as members
from omo.messaging import outbox
from omo.points import ledger
from omo.points.models import PointsAllocation, PointsEntry, PointsProgramme
from omo.points.rules import (
    LineFacts,
    OrderFacts,
    PointsRules,
    available_at,
    below_minimum,
    expires_at,
    line_weights,
    off_step,
    points_for_order,
    redeem_value,
    spend_bonus,
)
from omo.points.schemas import EntryRead, Expiring, PointsChange, PointsSummary, ProgrammeRead
from omo.shared import clock
from omo.shared.errors import Conflict, NotFound, ValidationFailed
from omo.shared.reassign import reassign_rows
from omo.shared.rows import rows_of
from omo.shared.versions import NewestVersion

# --- the programme ----------------------------------------------------------------------------


def rules_in_force(session: Session) -> PointsRules:
    """The newest rules, read once per transaction (a commit asks several times)."""
    cached = session.info.get("points_rules")
    if isinstance(cached, PointsRules):
        return cached
    rules = RULES_VERSION.get(session, default=_DEFAULT_RULES)
    session.info["points_rules"] = rules
    return rules


_DEFAULT_RULES = PointsRules()
# public for checkout, which reads it with the tier programme in one statement
RULES_VERSION = NewestVersion(
    PointsProgramme.__table__,  # type: ignore[arg-type]
    "rules",
    PointsRules.model_validate,
)


def get_programme(uow: UnitOfWork) -> ProgrammeRead:
    with uow.read() as session:
        row = session.scalar(select(PointsProgramme).order_by(PointsProgramme.id.desc()).limit(1))
        if row is None:
            return ProgrammeRead(version=0, rules=PointsRules(), created_at=None, actor=None)
        return ProgrammeRead(
            version=row.id,
            rules=PointsRules.model_validate(row.rules),
            created_at=row.created_at,
            actor=row.actor,
        )


def set_programme(uow: UnitOfWork, *, rules: PointsRules, actor: str | None) -> ProgrammeRead:
    """A new version of the rules, in force for whatever happens from now on."""
    with uow.write() as session:
        row = PointsProgramme(
            rules=rules.model_dump(mode="json"), actor=actor, created_at=clock.now()
        )
        session.add(row)
        session.flush()
        audit.record(session, actor=actor, action="points.programme", target=f"points:v{row.id}")
        return ProgrammeRead(version=row.id, rules=rules, created_at=row.created_at, actor=actor)


# --- earning ----------------------------------------------------------------------------------


def award_for_order(
    session: Session,
    *,
    member_id: int,
    order_id: int,
    channel: str,
    store: str | None,
    ordered_at: datetime,
    lines: Sequence[tuple[str | None, Decimal]],
    order_discount: Decimal,
    tier_multiplier: Decimal = Decimal(1),
    now: datetime,
    new_order: bool = False,
) -> PointsEntry | None:
    """Earn on an order, in the order's transaction; pending until the return window passes.
    `new_order`: the order was created in this transaction, so it has earned nothing yet (and
    the ledger's unique key would refuse a second earn)."""
    key = f"earn:order:{order_id}"
    held = None if new_order else ledger.find(session, key)
    if held is not None:
        return held
    rules = rules_in_force(session)
    facts = OrderFacts(
        channel=channel,
        store=store,
        ordered_at=ordered_at,
        lines=tuple(LineFacts(category=c, amount=a) for c, a in lines),
        order_discount=order_discount,
    )
    earning = points_for_order(
        rules,
        facts,
        tier_multiplier=tier_multiplier,
        birthday=birthday_of(session, rules, member_id),
    )
    if earning.points <= 0:
        return None
    members.hold_members(session, [member_id])
    return ledger.credit(
        session,
        member_id=member_id,
        kind="earn",
        points=earning.points,
        key=key,
        available_at=available_at(rules, ordered_at),
        expires_at=expires_at(rules, ordered_at),
        now=now,
        order_id=order_id,
        reason="; ".join(("order", *earning.explanation)),
    )


@dataclass(frozen=True)
class TakenBack:
    points: int
    short: int  # what the member had spent and held nothing left to give: written off


def birthday_of(session: Session, rules: PointsRules, member_id: int) -> date | None:
    """The member's birth date when the rules have a birthday multiplier (else not read)."""
    return members.birth_date(session, member_id) if rules.birthday_multiplier != 1 else None


def rules_as_of(session: Session, at: datetime) -> PointsRules:
    """The rules that were in force at `at`: the newest version made by then."""
    row = session.scalar(
        select(PointsProgramme.rules)
        .where(PointsProgramme.created_at <= at)
        .order_by(PointsProgramme.id.desc())
        .limit(1)
    )
    return _DEFAULT_RULES if row is None else PointsRules.model_validate(row)


def paid_with(session: Session, *, order_id: int) -> tuple[Decimal, tuple[str, ...]] | None:
    """What the points an order was paid with were worth, and the categories the rules they
    were redeemed under kept them off: a return places them on the lines as the sale did.
    None when it was paid with none."""
    spent = session.execute(
        select(PointsEntry.points, PointsEntry.created_at).where(
            PointsEntry.order_id == order_id, PointsEntry.kind == "redeem"
        )
    ).all()
    if not spent:
        return None
    rules = rules_as_of(session, clock.as_utc(min(at for _, at in spent)))
    return redeem_value(rules, -sum(p for p, _ in spent)), tuple(rules.redeem_excludes)


def share_earned_by(
    session: Session, *, order_id: int, channel: str, ordered_at: datetime,
    lines: Sequence[tuple[str | None, Decimal]], back: Sequence[Decimal],
) -> Decimal | None:  # fmt: skip
    """The share of what an order earned that comes back with `back` (the fraction of each of
    its `lines`, (category, amount), returned), weighed by the rules it earned under: the
    lines of a double-points category take back twice their money's share. None when it earned
    nothing."""
    earned = ledger.find(session, f"earn:order:{order_id}")
    if earned is None:
        return None
    rules = rules_as_of(session, clock.as_utc(earned.created_at))
    return _weighed_share(rules, channel=channel, ordered_at=ordered_at, lines=lines, back=back)


def _weighed_share(
    rules: PointsRules, *, channel: str, ordered_at: datetime,
    lines: Sequence[tuple[str | None, Decimal]], back: Sequence[Decimal],
) -> Decimal | None:  # fmt: skip
    facts = [LineFacts(category, amount) for category, amount in lines]
    weights = line_weights(rules, channel=channel, ordered_at=ordered_at, lines=facts)
    whole = sum(weights, Decimal(0))
    if whole <= 0:
        return None
    return min(sum((w * b for w, b in zip(weights, back, strict=True)), Decimal(0)) / whole,
               Decimal(1))  # fmt: skip


def earned_back_by_threshold(
    session: Session, *, order_id: int, channel: str, store: str | None, ordered_at: datetime,
    lines: Sequence[tuple[str | None, Decimal]], back: Sequence[Decimal],
    before: Sequence[Decimal],
) -> int | None:  # fmt: skip
    """The points a return takes back when the spend bonuses go with their threshold (the
    returns policy's spend_bonus: threshold): the share of what the order earned besides its
    bonuses that `back` (the fraction of each line returned now) weighs, as share_earned_by
    weighs it, and each bonus whole at the return after which the lines kept (`before`: the
    fraction of each already returned) no longer reach its spend. None when the order earned
    no bonus: the share is the same either way."""
    earned = ledger.find(session, f"earn:order:{order_id}")
    if earned is None:
        return None
    rules = rules_as_of(session, clock.as_utc(earned.created_at))

    def bonus(returned: Sequence[Decimal]) -> int:
        kept = [LineFacts(c, a * (1 - r)) for (c, a), r in zip(lines, returned, strict=True)]
        return spend_bonus(rules, channel=channel, store=store, ordered_at=ordered_at, lines=kept)

    whole = bonus([Decimal(0)] * len(lines))
    if whole == 0:
        return None
    share = _weighed_share(rules, channel=channel, ordered_at=ordered_at, lines=lines, back=back)
    rest = max(earned.points - whole, 0)
    after = [b + r for b, r in zip(before, back, strict=True)]
    back_rest = int((rest * (share or Decimal(0))).to_integral_value())
    return back_rest + bonus(before) - bonus(after)


def reverse_for_order(
    session: Session, *, order_id: int, share: Decimal, key: str, now: datetime,
    actor: str | None, written_off: int = 0, points: int | None = None,
) -> TakenBack:  # fmt: skip
    """Take back `share` (0–1] of what an order earned (a refund), or `points` of it when
    given; the points come off the order's own lot first, then the member's others; what was
    already spent is written off. `written_off`: what earlier refunds of the order wrote off —
    owed no more, so a later refund does not take it from points the member earned since."""
    earned = ledger.find(session, f"earn:order:{order_id}")
    if earned is None:
        return TakenBack(0, 0)
    held = ledger.find(session, key)
    if held is not None:
        return TakenBack(-held.points, 0)
    members.hold_members(session, [earned.member_id])
    if points is None:
        points = int((earned.points * share).to_integral_value())
    already = -sum(
        e.points
        for e in session.scalars(
            select(PointsEntry).where(
                PointsEntry.reverses_id == earned.id, PointsEntry.kind == "reverse"
            )
        )
    )
    points = min(points, earned.points - already - written_off)
    if points <= 0:
        return TakenBack(0, 0)
    entry = _take_back(session, earned, points, key=key, reason="refund", now=now, actor=actor)
    return TakenBack(-entry.points, points + entry.points)


def _take_back(
    session: Session, lot: PointsEntry, points: int, *, key: str, reason: str, now: datetime,
    actor: str | None,
) -> PointsEntry:  # fmt: skip
    """A reverse entry of `points` against `lot`: from the lot itself first, then the member's
    others (pending ones too); what was already spent is written off."""
    others = [
        other
        for other in ledger.lots(session, member_id=lot.member_id, now=now, pending=True)
        if other.id != lot.id
    ]
    return ledger.debit(
        session, member_id=lot.member_id, kind="reverse", points=points, key=key, now=now,
        take_from=[lot, *others], order_id=lot.order_id, reverses_id=lot.id, reason=reason,
        actor=actor, allow_short=True,
    )  # fmt: skip


def give_back_spent(
    session: Session, *, order_id: int, share: Decimal, key: str, now: datetime, actor: str | None
) -> int:
    """Return `share` of the points an order was paid with (a refund) to the very lots they
    came from, with their dates: a return never gives points a new life. A partial refund
    gives back the last spent first; the refund that completes the order gives back the rest.
    Returns points."""
    spent = list(
        session.scalars(
            select(PointsEntry).where(
                PointsEntry.order_id == order_id, PointsEntry.kind == "redeem"
            )
        )
    )
    if not spent:
        return 0
    total = -sum(e.points for e in spent)
    # given back already: reverse entries, or lots of their own (kind refund), which partial
    # refunds made before 12-06 credited
    back = sum(
        e.points
        for e in session.scalars(
            select(PointsEntry).where(
                PointsEntry.order_id == order_id,
                PointsEntry.kind.in_(("refund", "reverse")),
                PointsEntry.points > 0,
            )
        )
    )
    want = (
        total - back if share >= 1 else min(total - back, int((total * share).to_integral_value()))
    )
    if want <= 0:
        return 0
    members.hold_members(session, [spent[0].member_id])
    return ledger.give_back_part(
        session, debits=spent, points=want, key=key, now=now, actor=actor,
        reason="refund" if share >= 1 else "points paid on a refunded part of the order",
    )  # fmt: skip


# --- spending and adjusting --------------------------------------------------------------------


def redeem_in(
    session: Session,
    *,
    member_id: int,
    points: int,
    key: str,
    now: datetime,
    order_id: int | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> PointsEntry:
    """Spend available points, first to expire first (checkout calls this in its transaction)."""
    held = ledger.find(session, key)
    if held is not None:
        return ledger.same_or_conflict(held, member_id=member_id, kind="redeem", points=points)
    rules = rules_in_force(session)
    if (refused := below_minimum(rules, points) or off_step(rules, points)) is not None:
        raise refused
    members.hold_members(session, [member_id])
    return ledger.debit(
        session,
        member_id=member_id,
        kind="redeem",
        points=points,
        key=key,
        now=now,
        take_from=ledger.lots(session, member_id=member_id, now=now, pending=False),
        order_id=order_id,
        reason=reason,
        actor=actor,
    )


def redeem(
    uow: UnitOfWork, *, member_id: int, change: PointsChange, actor: str | None
) -> PointsSummary:
    def run(session: Session) -> PointsSummary:
        now = clock.now()
        member = members.current_member(session, member_id)
        if change.points <= 0:
            raise ValidationFailed("redeem a positive number of points", field="points")
        key = f"redeem:{change.idempotency_key}"
        entry = redeem_in(
            session, member_id=member.id, points=change.points, key=key, now=now,
            reason=change.reason, actor=actor,
        )  # fmt: skip
        summary = _summary(session, member.id, now, history=20)
        outbox.publish(
            session, topic="PointsRedeemed", key=f"points:{entry.id}", now=now,
            payload={"member_id": member.id, "points": change.points,
                     "idempotency_key": change.idempotency_key, "reason": change.reason,
                     "available": summary.available},
        )  # fmt: skip
        return summary

    return uow.run(run)


def cancel_redemption(uow: UnitOfWork, *, idempotency_key: str, actor: str | None) -> PointsSummary:
    """Give back a redemption (a voided sale): the points return to their lots."""

    def run(session: Session) -> PointsSummary:
        now = clock.now()
        spent = ledger.find(session, f"redeem:{idempotency_key}")
        if spent is None:
            raise NotFound(f"no redemption with key {idempotency_key!r}", field="idempotency_key",
                           ctx={"redemption_key": idempotency_key})  # fmt: skip
        members.hold_members(session, [spent.member_id])
        if ledger.find(session, f"cancel:{spent.id}") is None:
            back = ledger.give_back(session, debit=spent, key=f"cancel:{spent.id}", now=now,
                                    reason="redemption cancelled", actor=actor)  # fmt: skip
            summary = _summary(session, spent.member_id, now, history=20)
            outbox.publish(
                session, topic="PointsRedemptionCancelled", key=f"points:{back.id}", now=now,
                payload={"member_id": spent.member_id, "points": -spent.points,
                         "idempotency_key": idempotency_key, "available": summary.available},
            )  # fmt: skip
            return summary
        return _summary(session, spent.member_id, now, history=20)

    return uow.run(run)


def adjust(
    uow: UnitOfWork, *, member_id: int, change: PointsChange, actor: str | None
) -> PointsSummary:
    """A staff correction: positive adds a lot (with the programme's expiry), negative takes
    available points first-to-expire-first. Refused if it would take more than there is."""

    def run(session: Session) -> PointsSummary:
        now = clock.now()
        member = members.current_member(session, member_id)
        key = f"adjust:{change.idempotency_key}"
        held = ledger.find(session, key)
        if held is not None:
            ledger.same_or_conflict(held, member_id=member.id, kind="adjust", points=change.points)
            return _summary(session, member.id, now, history=20)
        if change.points == 0:
            raise ValidationFailed("an adjustment changes the balance", field="points")
        if not change.reason:
            raise ValidationFailed("say why (it is shown in the member's history)", field="reason")
        members.hold_members(session, [member.id])
        rules = rules_in_force(session)
        if change.points > 0:
            ledger.credit(
                session, member_id=member.id, kind="adjust", points=change.points, key=key,
                available_at=now, expires_at=expires_at(rules, now), now=now,
                reason=change.reason, actor=actor,
            )  # fmt: skip
        else:
            spendable = ledger.lots(session, member_id=member.id, now=now, pending=False)
            ledger.debit(
                session, member_id=member.id, kind="adjust", points=-change.points, key=key,
                now=now, take_from=spendable, reason=change.reason, actor=actor,
            )  # fmt: skip
        return _summary(session, member.id, now, history=20)

    return uow.run(run)


def award_bonus(
    session: Session, *, member_id: int, points: int, key: str, reason: str, now: datetime,
    order_id: int | None = None, ordered_at: datetime | None = None,
) -> PointsEntry | None:  # fmt: skip
    """Sign-up, review or referral bonus: available at once — or, one an order earned (a
    referral's qualifying order, `ordered_at`), when that order's points are: after the return
    window, so that a return takes it back before it can be spent."""
    if points <= 0:
        return None
    held = ledger.find(session, key)
    if held is not None:
        return held
    members.hold_members(session, [member_id])
    rules = rules_in_force(session)
    return ledger.credit(
        session, member_id=member_id, kind="bonus", points=points, key=key,
        available_at=available_at(rules, ordered_at) if ordered_at else now,
        expires_at=expires_at(rules, ordered_at or now), now=now, order_id=order_id,
        reason=reason,
    )  # fmt: skip


def award_signup(session: Session, *, member_id: int, now: datetime) -> PointsEntry | None:
    """The programme's sign-up bonus to a member enrolled now, once."""
    bonus = rules_in_force(session).signup_bonus
    return award_bonus(session, member_id=member_id, points=bonus, key=f"signup:{member_id}",
                       reason="sign-up bonus", now=now)  # fmt: skip


def award_review(
    session: Session, *, member_id: int, event_id: str, sku: str | None, bought: bool,
    now: datetime,
) -> PointsEntry | None:  # fmt: skip
    """The programme's review bonus: once per member and product (a review without a product,
    once per review), for a product the member bought if the programme says so, and no more
    than the programme's reviews_per_month in a calendar month."""
    rules = rules_in_force(session)
    if rules.review_bonus <= 0 or (rules.review_needs_purchase and not bought):
        return None
    key = f"review:{member_id}:sku:{sku}" if sku else f"review:event:{event_id}"
    members.hold_members(session, [member_id])  # two at once count in turn
    # the member's review bonuses, with those of members merged into them (their entries moved
    # here, under keys naming the member they were earned by)
    given = session.execute(
        select(PointsEntry.idempotency_key, PointsEntry.created_at).where(
            PointsEntry.member_id == member_id, PointsEntry.kind == "bonus",
            PointsEntry.idempotency_key.like("review:%"),
        )
    ).all()  # fmt: skip
    if ledger.find(session, key) is not None or (
        sku
        and any(k.endswith(f":sku:{sku}") and not k.startswith("review:event:") for k, _ in given)
    ):
        return None  # this product's review was rewarded already
    if rules.reviews_per_month is not None:
        zone = ZoneInfo(rules.timezone)
        local = now.astimezone(zone)
        start = datetime(local.year, local.month, 1, tzinfo=zone).astimezone(UTC)
        if sum(1 for _, at in given if clock.as_utc(at) >= start) >= rules.reviews_per_month:
            return None
    return award_bonus(session, member_id=member_id, points=rules.review_bonus, key=key,
                       reason=f"review{f' of {sku}' if sku else ''}", now=now)  # fmt: skip


def take_back_bonus(
    session: Session, *, bonus_key: str, key: str, reason: str, now: datetime, actor: str | None
) -> TakenBack | None:
    """Take a bonus back (its order was returned, the journey that gave it lost its reason):
    from its own lot first, then the member's others; what was already spent is written off,
    as for an order's points. Once per key (a retry answers the same). None: no such bonus."""
    bonus = ledger.find(session, bonus_key)
    if bonus is None:
        return None
    entry = ledger.find(session, key)
    if entry is None:
        members.hold_members(session, [bonus.member_id])
        entry = _take_back(session, bonus, bonus.points, key=key, reason=reason, now=now,
                           actor=actor)  # fmt: skip
    return TakenBack(-entry.points, bonus.points + entry.points)


# --- expiry -----------------------------------------------------------------------------------


def expire_due(uow: UnitOfWork, *, batch: int = 1_000) -> int:
    """Expire every lot past its date with points left; returns the points expired. Safe to
    run again and again (each lot expires once); runs in batches to keep transactions short."""
    total = 0
    while True:

        def run(session: Session) -> int:
            now = clock.now()
            due = list(
                session.scalars(
                    select(PointsEntry)
                    .where(PointsEntry.remaining > 0, PointsEntry.expires_at <= now)
                    .order_by(PointsEntry.member_id, PointsEntry.id)
                    .limit(batch)
                )
            )
            members.hold_members(session, sorted({lot.member_id for lot in due}))
            before = ledger.expiries_of(session, [lot.id for lot in due])
            points = 0
            for lot in due:
                session.refresh(lot)
                if lot.remaining <= 0:
                    continue
                points += lot.remaining
                # points given back to a lot after it expired (a redemption cancelled, its sale
                # refunded) expire again: the lot's second expiry needs a key of its own
                n = before.get(lot.id, 0)
                ledger.debit(
                    session, member_id=lot.member_id, kind="expire", points=lot.remaining,
                    key=f"expire:{lot.id}" + (f":{n + 1}" if n else ""), now=now,
                    take_from=[lot], reason="expired",
                )  # fmt: skip
            return points if due else -1

        got = uow.run(run)
        if got < 0:
            return total
        total += got


# --- what a member sees ------------------------------------------------------------------------


def summary(uow: UnitOfWork, *, member_id: int, history: int = 50) -> PointsSummary:
    with uow.read() as session:
        member = members.current_member(session, member_id)
        return _summary(session, member.id, clock.now(), history=history)


def summary_in(session: Session, *, member_id: int, now: datetime) -> PointsSummary:
    """Balance and what expires when, inside the caller's transaction (no history)."""
    return _summary(session, member_id, now, history=0)


def _summary(session: Session, member_id: int, now: datetime, *, history: int) -> PointsSummary:
    bal = ledger.balance(session, member_id=member_id, now=now)
    expiring: dict[datetime, int] = defaultdict(int)
    for lot in ledger.lots(session, member_id=member_id, now=now, pending=True):
        if lot.expires_at is not None:
            expiring[lot.expires_at] += lot.remaining
    entries = session.scalars(
        select(PointsEntry)
        .where(PointsEntry.member_id == member_id)
        .order_by(PointsEntry.created_at.desc(), PointsEntry.id.desc())
        .limit(history)
    )
    rules = rules_in_force(session)
    return PointsSummary(
        member_id=member_id,
        available=bal.available,
        pending=bal.pending,
        value=(rules.point_value * bal.available).quantize(Decimal("0.01")),
        expiring=[Expiring(expires_at=at, points=p) for at, p in sorted(expiring.items())],
        history=[EntryRead.model_validate(e) for e in entries],
    )


# --- merge support ----------------------------------------------------------------------------


def outstanding(session: Session, *, at: datetime) -> tuple[int, Decimal]:
    """Points held (available and pending) at `at` and their worth at today's point value:
    the ledger's sum up to then, which the lots' remaining points equal by check_ledger."""
    held = session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(PointsEntry.created_at < at)
    )
    return int(held or 0), rules_in_force(session).point_value


def reassign_members(session: Session, mapping: Mapping[int, int]) -> dict[int, list[int]]:
    return reassign_rows(
        session, id_col=PointsEntry.id, member_col=PointsEntry.member_id, mapping=mapping
    )


def restore_rows(session: Session, *, row_ids: Sequence[int], from_id: int, to_id: int) -> None:
    """Undo of a merge: the absorbed member's entries go back to them. Points the survivor
    spent from those lots while merged are taken from the survivor's own lots instead (the
    survivor keeps its later activity); if the survivor cannot cover them, the undo is refused."""
    if not row_ids:
        return
    session.execute(
        update(PointsEntry)
        .where(PointsEntry.id.in_(list(row_ids)), PointsEntry.member_id == from_id)
        .values(member_id=to_id)
        .execution_options(synchronize_session=False)
    )
    # points given back while merged (a refund, a cancelled redemption) to a debit that goes
    # back follow it: their allocations are on the lots that debit took from, which go back too
    session.execute(
        update(PointsEntry)
        .where(PointsEntry.reverses_id.in_(list(row_ids)), PointsEntry.member_id == from_id,
               PointsEntry.kind == "reverse", PointsEntry.points > 0)
        .values(member_id=to_id)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    session.expire_all()
    debit = aliased(PointsEntry)
    lot = aliased(PointsEntry)
    # a give-back counts with the debit it gives back to: a redemption cancelled while merged
    # took nothing, and what is moved is what a later debit took
    owner = case(
        (and_(debit.kind == "reverse", debit.points > 0, debit.reverses_id.is_not(None)),
         debit.reverses_id),
        else_=debit.id,
    )  # fmt: skip
    cross = session.execute(
        select(owner, PointsAllocation.lot_id, func.sum(PointsAllocation.points))
        .join(debit, debit.id == PointsAllocation.debit_id)
        .join(lot, lot.id == PointsAllocation.lot_id)
        .where(debit.member_id == from_id, lot.member_id == to_id)
        .group_by(owner, PointsAllocation.lot_id)
        .order_by(PointsAllocation.lot_id, owner)
    ).all()
    # what the survivor's own entries did to each of those lots, net: spent and given back
    # again (a sale paid with them, then refunded) is nothing to move
    by_lot: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for debit_id, lot_id, taken in cross:
        by_lot[int(lot_id)].append((int(debit_id), int(taken or 0)))
    now = clock.now()
    for lot_id, moves in by_lot.items():
        net = sum(taken for _, taken in moves)
        if net < 0:
            raise Conflict(
                f"member {from_id} gave back more of member {to_id}'s points than it took; "
                "adjust the balances, then undo",
                field="merge_id", ctx={"member": from_id, "other": to_id},
            )  # fmt: skip
        for debit_id, taken in moves:
            if net == 0:
                break
            if taken <= 0:
                continue
            part = min(taken, net)
            net -= part
            _spent_from_own_lots(session, debit_id=debit_id, lot_id=lot_id, points=part,
                                 from_id=from_id, to_id=to_id, now=now)  # fmt: skip
    session.flush()


def _spent_from_own_lots(
    session: Session, *, debit_id: int, lot_id: int, points: int, from_id: int, to_id: int,
    now: datetime,
) -> None:  # fmt: skip
    """Give `points` the survivor's debit took from the absorbed member's lot back to that lot,
    and take them from the survivor's own lots instead."""
    theirs = session.get(PointsEntry, lot_id)
    assert theirs is not None
    theirs.remaining += points
    session.add(PointsAllocation(debit_id=debit_id, lot_id=lot_id, points=-points))
    left = points
    for own in ledger.lots(session, member_id=from_id, now=now, pending=True, expired=True):
        if left == 0:
            break
        take = min(own.remaining, left)
        own.remaining -= take
        left -= take
        session.add(PointsAllocation(debit_id=debit_id, lot_id=own.id, points=take))
    if left:
        raise Conflict(
            f"member {from_id} spent {left} of member {to_id}'s points since the merge and "
            "has no points left to cover them; adjust the balances, then undo",
            field="merge_id", ctx={"member": from_id, "other": to_id, "points": left},
        )  # fmt: skip


def allocations_of(session: Session, entry_id: int) -> list[PointsAllocation]:
    return list(
        session.scalars(select(PointsAllocation).where(PointsAllocation.debit_id == entry_id))
    )


def check_ledger(session: Session) -> list[str]:
    """Differences in the ledger: a lot whose cached remaining is not its points less its
    allocations, or out of range; a member whose entries do not sum to their lots; a
    give-back that returns to a lot more than its debit took from it."""
    problems: list[str] = []
    taken = {
        lot: int(total)
        for lot, total in session.execute(
            select(PointsAllocation.lot_id, func.sum(PointsAllocation.points)).group_by(
                PointsAllocation.lot_id
            )
        )
    }
    sums: dict[int, int] = defaultdict(int)
    lots: dict[int, int] = defaultdict(int)
    for e in session.scalars(select(PointsEntry)):
        sums[e.member_id] += e.points
        if e.kind in ledger.CREDIT_KINDS and e.points > 0:
            lots[e.member_id] += e.remaining
            if e.remaining != e.points - taken.get(e.id, 0) or not 0 <= e.remaining <= e.points:
                problems.append(
                    f"points lot {e.id}: remaining {e.remaining}, points {e.points}, "
                    f"allocated {taken.get(e.id, 0)}"
                )
        elif e.remaining != 0:
            problems.append(f"points entry {e.id}: a debit with remaining {e.remaining}")
    for member_id, total in sums.items():
        if total != lots[member_id]:
            problems.append(
                f"member {member_id}: ledger sums to {total}, lots hold {lots[member_id]}"
            )
    return problems + _given_back_beyond_taken(session)


def _given_back_beyond_taken(session: Session) -> list[str]:
    """A give-back (a refund, a cancelled redemption) returns points only to the lots its
    debit took them from, and no more than it took: never a lot of a later date."""
    given = aliased(PointsEntry)
    back: dict[tuple[int | None, int], int] = defaultdict(int)
    for debit, lot, n in session.execute(
        select(given.reverses_id, PointsAllocation.lot_id, PointsAllocation.points)
        .join(given, given.id == PointsAllocation.debit_id)
        .where(given.kind == "reverse", given.points > 0, given.reverses_id.is_not(None))
    ):
        back[debit, lot] -= n
    if not back:
        return []
    reversed_ids = select(given.reverses_id).where(given.kind == "reverse", given.points > 0)
    took: dict[tuple[int | None, int], int] = defaultdict(int)
    for debit, lot, n in session.execute(
        select(PointsAllocation.debit_id, PointsAllocation.lot_id, PointsAllocation.points).where(
            PointsAllocation.debit_id.in_(reversed_ids)
        )
    ):
        took[debit, lot] += n
    return [
        f"points entry {debit}: {n} given back to lot {lot}, which it took {took[debit, lot]} from"
        for (debit, lot), n in sorted(back.items())
        if n > took[debit, lot]
    ]


ERASED = "(erased)"


def erase(session: Session, *, member_ids: Sequence[int]) -> None:
    """What staff wrote on the members' adjustments goes (it may name or describe them); every
    amount, date and allocation stays."""
    session.execute(
        update(PointsEntry)
        .where(PointsEntry.member_id.in_(list(member_ids)), PointsEntry.kind == "adjust",
               PointsEntry.reason.is_not(None))
        .values(reason=ERASED)
    )  # fmt: skip


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {"points_entries": rows_of(session, PointsEntry, PointsEntry.member_id, member_ids)}
