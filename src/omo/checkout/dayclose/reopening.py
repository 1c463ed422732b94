"""Reopening a closed store day (取消日結): a day closed too early or with a sale missing is
reopened by a manager or the back office, with a reason. The closing's figures stay in the audit
log and in the `StoreDayReopened` fact an ERP reverses it by; the day is then open, and closing
it again keeps new figures under the next version (its `StoreDayClosed` fact a key of its own)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.audit import service as audit
from omo.checkout.dayclose.closing import closing_row, hold_store
from omo.checkout.dayclose.days import Day, store_day_of
from omo.checkout.dayclose.schemas import DayReopened
from omo.checkout.models import StoreDayClosing
from omo.db import UnitOfWork
from omo.messaging import outbox
from omo.shared import clock
from omo.shared.errors import Conflict


def reopen_day(
    uow: UnitOfWork, *, store: str, day: date, time_zone: str, principal: Principal, reason: str
) -> DayReopened:
    """Reopen the store's closed day; a day not closed (or reopened already) is refused (409
    `day_not_closed`)."""

    def run(session: Session) -> DayReopened:
        d = store_day_of(session, store, day, time_zone, principal)
        assert d.store is not None
        hold_store(session, d.store.id)
        row = closing_row(session, d.store.id, day)
        if row is None or row.reopened_at is not None:
            raise Conflict(
                f"{store}'s {day.isoformat()} is not closed: there is nothing to reopen",
                field="path.day", code="day_not_closed",
                ctx={"store": store, "day": day.isoformat()},
            )  # fmt: skip
        now = clock.now()
        row.reopened_at, row.reopened_by, row.reopen_reason = now, principal.name[:80], reason
        read = reopened_read(store, row)
        told = {"store_id": d.store.id, "store": store, "day": day.isoformat(),
                **read.model_dump(mode="json", exclude={"store", "date"})}  # fmt: skip
        audit.record(session, actor=principal.name, action="store_day.reopen",
                     target=f"store-day:{store}:{day.isoformat()}", detail=told)  # fmt: skip
        outbox.publish(
            session, topic="StoreDayReopened", now=now, new_key=True,
            key=f"store-day-reopened:{d.store.id}:{day.isoformat()}:{row.version}", payload=told,
        )  # fmt: skip
        return read

    return uow.run(run)


def reopened_read(store: str, row: StoreDayClosing) -> DayReopened:
    assert row.reopened_at is not None
    return DayReopened.model_validate(
        {
            "store": store, "date": row.day, "version": row.version,
            "closed_at": clock.as_utc(row.closed_at), "closed_by": row.closed_by,
            "reopened_at": clock.as_utc(row.reopened_at), "reopened_by": row.reopened_by,
            "reason": row.reopen_reason, "at_closing": row.figures,
        }
    )  # fmt: skip


def reopened_of(session: Session, d: Day) -> DayReopened | None:
    """The day's last reopening, while the day is open again (none once closed again)."""
    if d.store is None:
        return None
    row = closing_row(session, d.store.id, d.day)
    if row is None or row.reopened_at is None:
        return None
    return reopened_read(d.store.code, row)
