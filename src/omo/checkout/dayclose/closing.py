"""Closing a store's day (日結確認): once the day is over, the store (or the back office) says
its figures are what they are. They are kept as they were then; a sale an offline till sends
later is still recorded (a real sale is never refused), and the day then says what changed since
its closing and which sales came late — what the books and a franchise's settlement adjust by.
Closing publishes `StoreDayClosed` for an ERP; closing again answers the first closing. A
day reopened (`reopening.py`) is closed again under its next version.

A late sale is one the closing did not count, whatever the clocks say: on PostgreSQL a till's
transaction may begin before the closing (its order recorded at a time before it) and commit
after it. The closing keeps the ids of the orders it counted, and takes the store's row FOR
UPDATE first: a sale's order holds that row (its foreign key's FOR KEY SHARE) until it commits,
so the closing waits for the sales in flight and the sales begun meanwhile wait for it, and its
figures and its ids come from the same sales."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.checkout.dayclose.days import Day, of_day, store_day_of
from omo.checkout.dayclose.figures import day_totals
from omo.checkout.dayclose.schemas import LATE_LISTED, DayClosing, DayTotals, LateSale
from omo.checkout.models import StoreDayClosing
from omo.commerce.models import Order, Store
from omo.db import UnitOfWork
from omo.messaging import outbox
from omo.shared import clock
from omo.shared.errors import ValidationFailed


def close_day(
    uow: UnitOfWork, *, store: str, day: date, time_zone: str, principal: Principal
) -> DayClosing:
    """Close the store's day with its figures now; a day closed before is answered as it was
    closed (`replayed`)."""

    def run(session: Session) -> DayClosing:
        d = store_day_of(session, store, day, time_zone, principal)
        assert d.store is not None
        hold_store(session, d.store.id)
        row = closing_row(session, d.store.id, day)
        if row is not None and row.reopened_at is None:
            return closing_read(session, d, row, replayed=True)
        if not d.complete:
            raise ValidationFailed(
                f"{day.isoformat()} is not over until {d.until.isoformat()}: a day is closed "
                f"once it has ended", field="path.day", code="day_not_over",
                ctx={"day": day.isoformat(), "until": d.until.isoformat()},
            )  # fmt: skip
        now, totals = clock.now(), day_totals(session, d)
        counted = sorted(session.scalars(select(Order.id).where(*of_day(d))))
        if row is None:
            row = StoreDayClosing(store_id=d.store.id, day=day, version=1)
            session.add(row)
        else:  # reopened: closed again, the closings before in the audit log and the facts
            row.version += 1
            row.reopened_at = row.reopened_by = row.reopen_reason = None
        row.closed_at, row.closed_by, row.counted = now, principal.name[:80], counted
        row.figures = totals.model_dump(mode="json")
        session.flush()
        key = f"store-day:{d.store.id}:{day.isoformat()}"  # the first closing's, as it was
        outbox.publish(
            session, topic="StoreDayClosed", now=now, new_key=True,
            key=key if row.version == 1 else f"{key}:{row.version}",
            payload={"store_id": d.store.id, "store": store, "day": day.isoformat(),
                     "closed_by": row.closed_by, "version": row.version, **row.figures},
        )  # fmt: skip
        return closing_read(session, d, row, replayed=False, now_totals=totals)

    return uow.run(run)


def closing_of(session: Session, d: Day, now_totals: DayTotals) -> DayClosing | None:
    """The day's closing, if it was closed, with what changed since."""
    if d.store is None:
        return None
    held = closing_row(session, d.store.id, d.day)
    if held is None or held.reopened_at is not None:
        return None
    return closing_read(session, d, held, now_totals=now_totals)


def closing_read(
    session: Session, d: Day, row: StoreDayClosing, *, replayed: bool = False,
    now_totals: DayTotals | None = None,
) -> DayClosing:  # fmt: skip
    assert d.store is not None
    then = DayTotals.model_validate(row.figures)
    current = now_totals if now_totals is not None else day_totals(session, d)
    return DayClosing(
        store=d.store.code, date=row.day, closed_at=clock.as_utc(row.closed_at),
        closed_by=row.closed_by, version=row.version,
        at_closing=then, since=current.minus(then),
        recorded_after=_late(session, d, row), replayed=replayed,
    )  # fmt: skip


def hold_store(session: Session, store_id: int) -> None:
    """Take the store's row FOR UPDATE (PostgreSQL): the store's sales in flight commit first,
    those begun meanwhile wait (their orders' foreign key holds it FOR KEY SHARE)."""
    session.execute(select(Store.id).where(Store.id == store_id).with_for_update())


def closing_row(session: Session, store_id: int, day: date) -> StoreDayClosing | None:
    """The day's closing row: closed, or reopened since (`reopened_at`); none if never closed."""
    return session.scalar(
        select(StoreDayClosing).where(
            StoreDayClosing.store_id == store_id, StoreDayClosing.day == day
        )
    )


def _late(session: Session, d: Day, row: StoreDayClosing) -> list[LateSale]:
    """The day's orders the closing did not count, in the order they were recorded."""
    if row.counted is None:  # closed before the closings kept what they counted
        late = [Order.created_at > clock.as_utc(row.closed_at)]
    else:
        counted = set(row.counted)
        day = session.execute(select(Order.id, Order.created_at).where(*of_day(d))).all()
        ids = [i for i, _at in sorted(day, key=lambda r: (r[1], r[0])) if i not in counted]
        late = [Order.id.in_(ids[:LATE_LISTED])]  # none, for a day with no late sales
    rows = session.scalars(
        select(Order).where(*of_day(d), *late)
        .order_by(Order.created_at, Order.id).limit(LATE_LISTED)
    )  # fmt: skip
    return [
        LateSale(order_id=o.id, external_id=o.external_id, channel=o.channel, total=o.total,
                 status=o.status, ordered_at=o.ordered_at, recorded_at=o.created_at)
        for o in rows
    ]  # fmt: skip
