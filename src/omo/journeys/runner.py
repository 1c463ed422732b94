"""Running journeys: members enter (time triggers evaluated set-based, event triggers read from
the outbox), then each entry takes its due steps in one transaction with the step's effects.
A step is recorded under a unique (entry, step) key in that same transaction, so a member
never gets the same step twice, however often or concurrently the scheduler runs."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from omo.commerce import service as commerce
from omo.commerce.models import Order
from omo.coupons import service as coupons
from omo.db import UnitOfWork, is_postgres
from omo.journeys import definition as d
from omo.journeys import personalise, triggers
from omo.journeys.models import Journey, JourneyEntry, JourneyStep, JourneyVersion, TriggerScan
from omo.members import service as members
from omo.members.models import Member
from omo.messaging import outbox
from omo.messaging import service as messaging
from omo.messaging.models import OutboxMessage
from omo.points import service as points
from omo.settings import Settings
from omo.shared import clock
from omo.tasks import service as tasks
from omo.tiers import service as tiers

_INSERT_BATCH = 5_000
log = logging.getLogger("omo.journeys")
OUTBOX_SCAN = "outbox"
_TOPIC = {  # the triggers each published fact may fire
    "MemberEnrolled": frozenset({"joined"}),
    "TierChanged": frozenset({"tier_changed"}),
    "OrderRecorded": frozenset({"product_bought", "order_spend"}),
}


def enabled_journeys(session: Session) -> list[tuple[Journey, d.JourneyDefinition]]:
    rows = session.scalars(select(Journey).where(Journey.enabled).order_by(Journey.id))
    return [(j, d.JourneyDefinition.model_validate(j.definition)) for j in rows]


# --- entering ---------------------------------------------------------------------------------


def enter_time_triggers(session: Session, *, now: datetime, settings: Settings) -> dict[str, int]:
    """Evaluate every enabled journey's time trigger; new entries per journey key."""
    entered: dict[str, int] = {}
    for journey, definition in enabled_journeys(session):
        if definition.trigger.kind in d.EVENT_TRIGGERS:
            continue
        fit = triggers.audience(session, definition.audience)
        rows: list[tuple[int, str]] = []
        for query in triggers.candidates(
            session, definition.trigger, now=now, time_zone=settings.time_zone
        ):
            rows += [
                (int(m), triggers.stamp_text(stamp))
                for m, stamp in session.execute(query.where(fit))
            ]
        entered[journey.key] = enter(session, journey, definition, rows, now=now)
    return entered


def enter(
    session: Session, journey: Journey, definition: d.JourneyDefinition,
    rows: Iterable[tuple[int, str]], *, now: datetime,
) -> int:  # fmt: skip
    """Enter members (member_id, occurrence) once per occurrence; each is drawn into the
    treatment or the held-out control group. Returns how many entered now."""
    values = [
        {
            "journey_id": journey.id,
            "version": journey.version,
            "member_id": member_id,
            "occurrence": occurrence[:160],
            "grp": grp,
            "state": state,
            "step": 0,
            "due_at": now,
            "entered_at": now,
            "context": {},
        }
        for member_id, occurrence in dict.fromkeys(rows)
        for grp, state in [_group(member_id, journey, definition)]
    ]
    if not values:
        return 0
    before = _entries(session, journey.id)
    dialect = postgresql if is_postgres(session) else sqlite
    stmt = dialect.insert(JourneyEntry).on_conflict_do_nothing(
        index_elements=["journey_id", "member_id", "occurrence"]
    )
    for start in range(0, len(values), _INSERT_BATCH):
        session.execute(stmt, values[start : start + _INSERT_BATCH])
    return _entries(session, journey.id) - before


def _group(member_id: int, journey: Journey, definition: d.JourneyDefinition) -> tuple[str, str]:
    if d.in_control(member_id, salt=journey.salt, share=definition.control_share):
        return "control", "control"
    return "treatment", "active"


def _entries(session: Session, journey_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(JourneyEntry).where(JourneyEntry.journey_id == journey_id)
    ) or 0  # fmt: skip


def enter_from_outbox(
    session: Session, *, now: datetime, settle_s: float = 0.0, batch: int = 2_000
) -> tuple[int, dict[str, int]]:
    """Read the facts published since the last scan and enter members into the journeys their
    topic triggers (joined, tier changed, product bought); returns (facts read, entered)."""
    scan = session.get(TriggerScan, OUTBOX_SCAN, with_for_update=True)
    if scan is None:
        scan = TriggerScan(name=OUTBOX_SCAN, position=0, scanned_at=now)
        session.add(scan)
        session.flush()
    read = outbox.unread(session, after=scan.position, now=now, settle_s=settle_s, limit=batch)
    entered: dict[str, int] = {}
    if read:
        # this pass is the outbox's dispatcher: every fact it reads is delivered, including
        # those of topics no journey listens to (so the backlog metric means something)
        scan.position, scan.scanned_at = read[-1].id, now
        outbox.mark_delivered(session, ids=[f.id for f in read], now=now)
    facts = [f for f in read if f.topic in _TOPIC]
    if facts:
        journeys = [j for j in enabled_journeys(session) if j[1].trigger.kind in d.EVENT_TRIGGERS]
        for journey, definition in journeys:
            rows = _matching(session, definition, facts)
            if rows and definition.audience is not None:
                fit = triggers.audience(session, definition.audience)
                ids = {m for m, _ in rows}
                keep = set(session.scalars(select(Member.id).where(Member.id.in_(ids), fit)))
                rows = [r for r in rows if r[0] in keep]
            entered[journey.key] = enter(session, journey, definition, rows, now=now)
    return len(read), entered


def _matching(
    session: Session, definition: d.JourneyDefinition, facts: Sequence[OutboxMessage]
) -> list[tuple[int, str]]:
    trigger = definition.trigger
    wanted = [f for f in facts if trigger.kind in _TOPIC[f.topic] and f.payload.get("member_id")]
    if isinstance(trigger, d.TierChangedTrigger) and trigger.to:
        wanted = [f for f in wanted if f.payload.get("to") in trigger.to]
    if isinstance(trigger, d.OrderSpend):
        wanted = [f for f in wanted if _spent(trigger, f.payload)]
        # what is kept now: an order returned before this pass read it gives no coupon
        kept = commerce.kept_totals(session, order_ids=[int(f.payload["order_id"]) for f in wanted])
        wanted = [f for f in wanted if kept.get(int(f.payload["order_id"]), 0) >= trigger.min_total]
    if isinstance(trigger, d.ProductBought):
        orders = {int(f.payload["order_id"]): f for f in wanted}
        hits = commerce.orders_with_items(
            session, order_ids=list(orders), skus=trigger.skus, categories=trigger.categories
        )
        kept = commerce.kept_totals(session, order_ids=sorted(hits))
        # an order returned in full before this pass read it recommends nothing
        wanted = [orders[o] for o in sorted(hits) if kept.get(o, 0) > 0]
    return [(int(f.payload["member_id"]), f.key) for f in wanted]


def _spent(trigger: d.OrderSpend, order: dict[str, Any]) -> bool:
    """Whether a recorded order (OrderRecorded's payload) reaches the trigger's spend, on one
    of its channels, and was not cancelled."""
    if order.get("status") == "cancelled":
        return False
    if trigger.channels is not None and order.get("channel") not in {
        c.value for c in trigger.channels
    }:
        return False
    return Decimal(str(order.get("total") or 0)) >= trigger.min_total


# --- taking steps -----------------------------------------------------------------------------


def due_entries(session: Session, *, now: datetime, limit: int) -> list[tuple[int, int]]:
    """The entries with a step due, (entry id, member id), the longest due first."""
    return [
        (entry, member)
        for entry, member in session.execute(
            select(JourneyEntry.id, JourneyEntry.member_id)
            .join(Journey, Journey.id == JourneyEntry.journey_id)
            .where(JourneyEntry.state == "active", JourneyEntry.due_at <= now, Journey.enabled)
            .order_by(JourneyEntry.due_at, JourneyEntry.id)
            .limit(limit)
        )
    ]


def advance(uow: UnitOfWork, *, settings: Settings, limit: int = 5_000) -> int:
    """Take the due steps of up to `limit` entries, each entry in its own transaction. An entry
    whose step fails (a coupon template deleted, a budget rule broken …) is set aside as
    `failed` with the error, and the others go on."""
    now = clock.now()
    with uow.read() as session:
        ids = due_entries(session, now=now, limit=limit)
    definitions: dict[tuple[int, int], d.JourneyDefinition] = {}
    for entry_id, member_id in ids:
        try:
            _take(uow, entry_id, member_id, now=now, settings=settings, definitions=definitions)
        except Exception as exc:  # whatever it was, it is kept on the entry
            log.warning("journey entry %s failed: %s", entry_id, exc)
            uow.run(partial(_fail, entry_id=entry_id, error=exc, now=now))
    return len(ids)


def _fail(session: Session, *, entry_id: int, error: Exception, now: datetime) -> None:
    entry = session.get(JourneyEntry, entry_id)
    if entry is not None and entry.state == "active":
        entry.state, entry.finished_at = "failed", now
        entry.context = {**entry.context, "error": f"{type(error).__name__}: {error}"[:300]}


def _take(
    uow: UnitOfWork, entry_id: int, member_id: int, *, now: datetime, settings: Settings,
    definitions: dict[tuple[int, int], d.JourneyDefinition],
) -> None:  # fmt: skip
    def run(session: Session) -> None:
        take_steps(session, entry_id=entry_id, now=now, settings=settings,
                   definitions=definitions, member_id=member_id)  # fmt: skip

    uow.run(run)


def take_steps(
    session: Session, *, entry_id: int, now: datetime, settings: Settings,
    definitions: dict[tuple[int, int], d.JourneyDefinition], member_id: int | None = None,
) -> None:  # fmt: skip
    """`member_id`: the entry's, when the caller read it with the entry's id (an entry's member
    never changes)."""
    # the member first, then the entry: the order a refund takes them in (it holds the member,
    # then ends the journeys the return took the reason from), so that the two never deadlock
    if member_id is None:
        member_id = session.scalar(
            select(JourneyEntry.member_id).where(JourneyEntry.id == entry_id)
        )
        if member_id is None:
            return
    members.hold_members(session, [member_id])
    entry = session.get(JourneyEntry, entry_id, with_for_update=True)
    if entry is None or entry.state != "active" or entry.due_at > now:
        return  # another worker took it
    if members.get_member(session, entry.member_id).status != "active":
        finish(entry, "exited", now)  # merged away meanwhile: the survivor has their own
        return
    definition = definition_of(session, entry, definitions)
    while entry.step < len(definition.steps):
        step = definition.steps[entry.step]
        index = entry.step
        entry.step += 1
        if isinstance(step, d.Wait):
            entry.due_at = now + timedelta(days=step.days, hours=step.hours)
            _record(session, entry, index, "wait", f"until {entry.due_at.isoformat()}", now)
            return
        if isinstance(step, d.Condition):
            holds = _holds(session, entry, step.if_)
            _record(session, entry, index, "condition", "met" if holds else "not met", now)
            if not holds:
                finish(entry, "exited", now)
                return
            continue
        outcome = _act(session, entry, index, step, now=now, settings=settings)
        _record(session, entry, index, step.type, outcome, now)
    finish(entry, "done", now)


def definition_of(
    session: Session, entry: JourneyEntry, cache: dict[tuple[int, int], d.JourneyDefinition]
) -> d.JourneyDefinition:
    """The definition the member entered under (a later edit does not change their path)."""
    key = (entry.journey_id, entry.version)
    if key not in cache:
        raw = session.scalar(
            select(JourneyVersion.definition).where(
                JourneyVersion.journey_id == entry.journey_id,
                JourneyVersion.version == entry.version,
            )
        )
        cache[key] = d.JourneyDefinition.model_validate(raw)
    return cache[key]


def _record(
    session: Session, entry: JourneyEntry, index: int, kind: str, outcome: str, now: datetime
) -> None:
    session.add(
        JourneyStep(entry_id=entry.id, step=index, kind=kind, outcome=outcome[:200], done_at=now)
    )
    session.flush()  # the unique (entry, step) refuses a second run of this step here


def finish(entry: JourneyEntry, state: str, now: datetime) -> None:
    entry.state, entry.finished_at = state, now


def _holds(session: Session, entry: JourneyEntry, condition: str) -> bool:
    if condition in d.LIVE_CONDITIONS:
        bought = session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.member_id == entry.member_id, Order.ordered_at >= entry.entered_at)
        )
        return bool(bought) == (condition == "purchased_since_entry")
    fit = triggers.audience(session, condition)
    return session.scalar(select(Member.id).where(Member.id == entry.member_id, fit)) is not None


def _act(
    session: Session, entry: JourneyEntry, index: int, step: Any, *, now: datetime,
    settings: Settings,
) -> str:  # fmt: skip
    key = f"journey:{entry.id}:{index}"
    if isinstance(step, d.Send):
        context = personalise.context(session, entry=entry, template=step.template, now=now)
        message = messaging.queue(
            session, member_id=entry.member_id, channel=step.channel, template=step.template,
            key=key, context=context, settings=settings, journey_id=entry.journey_id,
            coupon_code=entry.context.get("coupon_code"),
        )  # fmt: skip
        return f"{message.state}:{message.reason}" if message.reason else message.state
    if isinstance(step, d.IssueCoupon):
        template = step.template
        if step.tier_benefit is not None:
            level = tiers.level_of(session, member_id=entry.member_id)
            template = getattr(level.benefits, step.tier_benefit)
            if template is None:
                return f"skipped: no {step.tier_benefit} at {level.code}"
        assert template is not None
        result = coupons.issue_in(
            session, template_code=template, member_ids=[entry.member_id], key=key
        )
        if not result.issued:
            return f"refused:{result.refused.get(entry.member_id, 'unknown')}"
        coupon = result.issued[0]
        until = coupon.valid_until.date().isoformat() if coupon.valid_until else ""
        entry.context = {**entry.context, "coupon_code": coupon.code, "coupon_until": until}
        return f"issued:{coupon.code}"
    if isinstance(step, d.AwardPoints):
        points.award_bonus(
            session, member_id=entry.member_id, points=step.points, key=key, reason=step.reason,
            now=now,
        )  # fmt: skip
        return f"awarded:{step.points}"
    if isinstance(step, d.AddTag):
        added = members.add_tag(
            session, member_id=entry.member_id, tag=step.tag, source=f"journey:{entry.journey_id}",
            now=now,
        )  # fmt: skip
        return "tagged" if added else "already tagged"
    if isinstance(step, d.RemoveTag):
        return f"removed:{members.remove_tag(session, member_id=entry.member_id, tag=step.tag)}"
    if isinstance(step, d.CreateTask):
        store = personalise.home_store(session, entry.member_id)
        task = tasks.create_in(
            session, member_id=entry.member_id, store_id=store, kind=step.kind, note=step.note,
            key=key, now=now,
        )  # fmt: skip
        return f"task:{task.id}"
    raise AssertionError(f"unknown step {step!r}")
