"""Use cases of journeys: save a definition (a new version each time), switch it on or off,
read it, and run the scheduler's pass (`omo jobs run`)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.coupons import service as coupons
from omo.db import UnitOfWork
from omo.journeys import definition as d
from omo.journeys import runner
from omo.journeys.models import Journey, JourneyEntry, JourneyVersion
from omo.journeys.schemas import JobsReport, JourneyRead
from omo.messaging import service as messaging
from omo.messaging import templates
from omo.messaging.adapters import Adapter
from omo.settings import Settings
from omo.shared import clock
from omo.shared.errors import NotFound, ValidationFailed
from omo.shared.rows import rows_of
from omo.webhooks import delivery as webhooks
from omo.webhooks import retention


def parse(raw: dict[str, Any]) -> d.JourneyDefinition:
    """A definition from JSON, or a 422 naming the first wrong field and why."""
    try:
        return d.JourneyDefinition.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(
            f"{where}: {first['msg']}", field=f"definition.{where}", code="invalid_journey"
        ) from None


def _check_references(session: Session, definition: d.JourneyDefinition) -> None:
    for code in sorted(definition.coupon_templates()):
        if not coupons.has_template(session, code):
            raise ValidationFailed(
                f"no coupon template {code!r}", field="definition.steps", code="invalid_journey"
            )
    for name, _channel in sorted(definition.templates()):
        if not templates.exists(name):
            raise ValidationFailed(
                f"no message template {name!r} (have: {', '.join(templates.names())})",
                field="definition.steps", code="invalid_journey",
            )  # fmt: skip


def save(
    uow: UnitOfWork, *, key: str, raw: dict[str, Any], actor: str | None
) -> tuple[JourneyRead, bool]:
    """Create the journey or give it a new version; members already in it keep the version
    they entered under. Returns (journey, created)."""
    definition = parse(raw)

    def run(session: Session) -> tuple[JourneyRead, bool]:
        _check_references(session, definition)
        now = clock.now()
        stored = definition.model_dump(mode="json", by_alias=True)
        journey = session.scalar(select(Journey).where(Journey.key == key))
        created = journey is None
        if journey is None:
            journey = Journey(
                key=key, name=definition.name, version=1, definition=stored, enabled=False,
                salt=secrets.randbelow(2**31 - 1), created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(journey)
            session.flush()
        elif journey.definition == stored:
            return JourneyRead.model_validate(journey), False
        else:
            journey.version += 1
            journey.definition, journey.name, journey.updated_at = stored, definition.name, now
        session.add(
            JourneyVersion(
                journey_id=journey.id, version=journey.version, definition=stored, actor=actor,
                created_at=now,
            )
        )  # fmt: skip
        session.flush()
        audit.record(
            session, actor=actor, action="journey.save", target=f"journey:{key}",
            detail={"version": journey.version},
        )  # fmt: skip
        return JourneyRead.model_validate(journey), created

    return uow.run(run)


def set_enabled(
    uow: UnitOfWork, *, key: str, enabled: bool, actor: str | None = None
) -> JourneyRead:
    def run(session: Session) -> JourneyRead:
        journey = _journey(session, key)
        if enabled:  # a coupon template may have gone since the journey was saved
            _check_references(session, d.JourneyDefinition.model_validate(journey.definition))
        journey.enabled, journey.updated_at = enabled, clock.now()
        audit.record(
            session, actor=actor, action="journey.enable" if enabled else "journey.disable",
            target=f"journey:{key}",
        )  # fmt: skip
        return JourneyRead.model_validate(journey)

    return uow.run(run)


def _journey(session: Session, key: str) -> Journey:
    journey = session.scalar(select(Journey).where(Journey.key == key))
    if journey is None:
        raise NotFound(f"no journey {key!r}", field="key")
    return journey


def get(uow: UnitOfWork, *, key: str) -> JourneyRead:
    with uow.read() as session:
        return JourneyRead.model_validate(_journey(session, key))


def list_journeys(uow: UnitOfWork) -> list[JourneyRead]:
    with uow.read() as session:
        rows = session.scalars(select(Journey).order_by(Journey.key))
        return [JourneyRead.model_validate(j) for j in rows]


def run_jobs(
    uow: UnitOfWork, *, settings: Settings, adapters: dict[str, Adapter], deliver: bool = True
) -> JobsReport:
    """One pass of the scheduler: facts from the outbox and time triggers enter members, due
    steps are taken, due messages delivered, facts posted to webhooks, facts past retention
    removed. Safe to run twice or side by side."""
    now = clock.now()
    from_events: dict[str, int] = {}
    while True:  # the backlog in batches, each its own transaction
        read, entered_now = uow.run(
            lambda s: runner.enter_from_outbox(s, now=now, settle_s=settings.outbox_settle_s)
        )
        for k, n in entered_now.items():
            from_events[k] = from_events.get(k, 0) + n
        if read == 0:
            break
    from_time = uow.run(lambda s: runner.enter_time_triggers(s, now=now, settings=settings))
    entered = {
        k: from_events.get(k, 0) + from_time.get(k, 0) for k in sorted({*from_events, *from_time})
    }
    advanced = runner.advance(uow, settings=settings)
    delivery = messaging.deliver_due(uow, adapters=adapters, settings=settings) if deliver else None
    hours = settings.webhook_switch_off_after_h
    posted = (
        webhooks.deliver_due(uow, settle_s=settings.outbox_settle_s,
                             switch_off_after=timedelta(hours=hours) if hours else None)
        if deliver else None
    )  # fmt: skip
    # after the posts, so a subscription able to post is not moved past what it could have had
    pruned = retention.prune_outbox(uow, retention_days=settings.outbox_retention_days)
    return JobsReport(
        entered=entered, advanced=advanced, delivery=delivery, webhooks=posted, pruned=pruned
    )


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {"journey_entries": rows_of(session, JourneyEntry, JourneyEntry.member_id, member_ids)}
