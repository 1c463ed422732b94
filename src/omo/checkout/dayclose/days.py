"""The brand's day: its window as UTC instants, today, a day a form gives, and the store a
caller may read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, case, func, select, type_coerce
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.commerce import service as commerce
from omo.commerce.models import Order, Store
from omo.members.models import Member
from omo.shared import clock
from omo.shared.errors import Forbidden, ValidationFailed
from omo.shared.zones import start_of_day

EARLIEST = date(2000, 1, 1)  # before any till sent OMO a sale; keeps the window computable


@dataclass(frozen=True)
class Day:
    store: Store | None  # None: every store's, and the orders of none
    day: date
    zone: ZoneInfo
    since: datetime
    until: datetime
    complete: bool


def today(time_zone: str) -> date:
    """The brand's day now."""
    return clock.now().astimezone(ZoneInfo(time_zone)).date()


def parse_day(text: str | None, time_zone: str) -> date:
    """A day as a page's form gives it (YYYY-MM-DD); none: today."""
    if not text:
        return today(time_zone)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a day (YYYY-MM-DD)", field="day") from None


def window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[midnight, next midnight) of the day in `zone`, as UTC instants (a day of a clock
    change is 23 or 25 hours long)."""
    return start_of_day(day, zone), start_of_day(day + timedelta(days=1), zone)


def store_day_of(
    session: Session, code: str, day: date, time_zone: str, principal: Principal
) -> Day:
    """The day at a store, for a caller who may read that store's."""
    store = commerce.store_by_code(session, code, field="code")
    if principal.store_id is not None and principal.store_id != store.id:
        raise Forbidden(
            "this API key is bound to another store and cannot read this one's day",
            field="code", code="wrong_store",
        )  # fmt: skip
    return brand_day(day, time_zone, store=store)


def brand_day(day: date, time_zone: str, *, store: Store | None = None) -> Day:
    """The brand's day `day`, from 2000-01-01 to today; a later or earlier one is refused."""
    zone = ZoneInfo(time_zone)
    now = clock.now()
    today = now.astimezone(zone).date()
    if not EARLIEST <= day <= today:
        raise ValidationFailed(
            f"{day.isoformat()} is not a day from {EARLIEST.isoformat()} to today "
            f"({today.isoformat()}, {time_zone})",
            field="path.day", ctx={"today": today.isoformat()},
        )  # fmt: skip
    since, until = window(day, zone)
    return Day(store, day, zone, since, until, complete=until <= now)


def at_store(d: Day) -> tuple[Any, ...]:
    """Orders of the day's store, if it has one."""
    return () if d.store is None else (Order.store_id == d.store.id,)


def of_day(d: Day) -> tuple[Any, ...]:
    """The day's orders: made in its window, at its store if it has one."""
    return (*at_store(d), Order.ordered_at >= d.since, Order.ordered_at < d.until)


def sold(d: Day) -> Any:
    """The ids of the day's sales (cancelled orders left out)."""
    return select(Order.id).where(*of_day(d), Order.status != "cancelled")


def enrolled_by_store(d: Day) -> Any:
    """Members who joined at each store on the day (會員招募): (store id, how many); joined
    online (no store) and accounts since merged into another as duplicates left out."""
    return (
        select(Member.join_store_id, func.count())
        .where(Member.joined_at >= d.since, Member.joined_at < d.until,
               Member.join_store_id.is_not(None), Member.status != "merged",
               *(() if d.store is None else (Member.join_store_id == d.store.id,)))
        .group_by(Member.join_store_id)
    )  # fmt: skip


def sum_cents(column: Any) -> Any:
    """SUM of a money column in cents (0 over no rows): exact on SQLite and PostgreSQL."""
    return func.coalesce(func.sum(type_coerce(column, BigInteger)), 0)


def member_paid() -> Any:
    """SUM, in cents, of what members paid: the orders with a member."""
    return sum_cents(case((Order.member_id.is_not(None), Order.total), else_=0))
