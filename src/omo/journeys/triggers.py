"""Who a trigger selects now, as one set-based query per journey (never a loop per member).

Each time trigger is a SELECT of (member_id, stamp) over the members' maintained aggregates
(member_stats), the last refresh's scores (member_scores) and the events; the stamp names the
occurrence (the day of the last order, the year of a birthday …) so that evaluating a trigger
twice enters nobody twice. This module only reads: it is the batch read path of journeys, like
analytics' snapshot, and reads the other areas' tables for that reason alone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, extract, func, literal, or_, select
from sqlalchemy.orm import Session

from omo.analytics import service as analytics
from omo.analytics.models import MemberScore
from omo.commerce.models import MemberStats, Order
from omo.events.models import Event
from omo.journeys import definition as d
from omo.members.models import Member
from omo.points.models import PointsEntry
from omo.shared import zones
from omo.shared.sqldates import days_between

EPOCH = date(1970, 1, 1)


def candidates(session: Session, trigger: Any, *, now: datetime, time_zone: str) -> list[Any]:
    """SELECTs of (member_id, stamp) for a time trigger (one per time zone where local dates
    matter); event triggers are fed from the outbox instead."""
    active = Member.status == "active"
    q: Any
    if isinstance(trigger, d.NoPurchaseSinceJoin):
        upper = now - timedelta(days=trigger.days)
        lower = upper - timedelta(days=trigger.window_days)
        q = (
            select(Member.id, literal("once"))
            .outerjoin(MemberStats, MemberStats.member_id == Member.id)
            .where(active, Member.joined_at > lower, Member.joined_at <= upper)
            .where(func.coalesce(MemberStats.order_count, 0) == 0)
        )
        return [q]
    if isinstance(trigger, d.Dormant):
        upper = now - timedelta(days=trigger.days)
        lower = upper - timedelta(days=trigger.window_days)
        q = (
            select(Member.id, MemberStats.last_order_at)
            .join(MemberStats, MemberStats.member_id == Member.id)
            .where(active, MemberStats.last_order_at > lower, MemberStats.last_order_at <= upper)
        )
        return [q]
    if isinstance(trigger, d.PointsExpiring):
        lots = PointsEntry
        soon = (
            select(lots.member_id.label("member_id"), func.min(lots.expires_at).label("first"))
            .where(
                lots.remaining > 0,
                lots.expires_at > now,
                lots.expires_at <= now + timedelta(days=trigger.days),
                or_(lots.available_at.is_(None), lots.available_at <= now),
            )
            .group_by(lots.member_id)
            .having(func.sum(lots.remaining) >= trigger.min_points)
            .subquery()
        )
        q = select(Member.id, soon.c.first).join(soon, soon.c.member_id == Member.id).where(active)
        return [q]
    if isinstance(trigger, d.CartAbandoned):
        upper = now - timedelta(hours=trigger.hours)
        lower = upper - timedelta(hours=trigger.window_hours)
        carts = (
            select(Event.member_id.label("member_id"), func.max(Event.occurred_at).label("last"))
            .where(
                Event.kind == "add_to_cart",
                Event.member_id.is_not(None),
                Event.occurred_at > lower,
                Event.occurred_at <= upper,
            )
            .group_by(Event.member_id)
            .subquery()
        )
        bought_since = exists().where(
            Order.member_id == carts.c.member_id, Order.ordered_at >= carts.c.last
        )
        q = (
            select(Member.id, carts.c.last)
            .join(carts, carts.c.member_id == Member.id)
            .where(active, ~bought_since)
        )
        return [q]
    if isinstance(trigger, d.BirthdayMonth):
        return _birthdays(now, time_zone)
    if isinstance(trigger, d.RepurchaseDue):
        since_last = days_between(session, MemberStats.last_order_at, now)
        due = MemberScore.cycle_days - trigger.early_days
        q = (
            select(Member.id, MemberStats.last_order_at)
            .join(MemberStats, MemberStats.member_id == Member.id)
            .join(MemberScore, MemberScore.member_id == Member.id)
            .where(active, MemberScore.cycle_days.is_not(None))
            .where(since_last >= due, since_last < due + trigger.window_days)
        )
        return [q]
    if isinstance(trigger, d.InSegment):
        bucket = (now.date() - EPOCH).days // trigger.every_days
        condition = analytics.segment_condition(session, trigger.segment)
        q = (
            select(Member.id, literal(f"p{bucket}"))
            .join(MemberScore, MemberScore.member_id == Member.id)
            .where(active, condition)
        )
        return [q]
    if isinstance(trigger, d.LowFeedback):
        q = (
            select(Member.id, Event.event_id)
            .join(Event, Event.member_id == Member.id)
            .where(
                active,
                Event.kind == "feedback",
                Event.survey == trigger.survey,
                Event.score <= trigger.max_score,
                Event.occurred_at > now - timedelta(days=trigger.window_days),
                Event.occurred_at <= now,
            )
        )
        return [q]
    raise ValueError(f"{type(trigger).__name__} is not a time trigger")


def _birthdays(now: datetime, time_zone: str) -> list[Any]:
    """Members whose birthday month it is where they live: one query per local month (members
    of countries in other zones may be in another month near its turn)."""
    by_month: dict[tuple[int, int], list[str]] = {}
    for country in zones.known_countries():
        local = now.astimezone(zones.zone_of(country, time_zone))
        by_month.setdefault((local.year, local.month), []).append(country)
    brand = now.astimezone(ZoneInfo(time_zone))
    queries: list[Any] = []
    for (year, month), countries in by_month.items():
        where_they_live: Any = Member.country.in_(countries)
        if (year, month) == (brand.year, brand.month):  # no or unknown country: the brand's zone
            where_they_live = or_(
                where_they_live, Member.country.is_(None),
                Member.country.not_in(zones.known_countries()),
            )  # fmt: skip
        queries.append(
            select(Member.id, literal(str(year))).where(
                Member.status == "active",
                Member.birth_date.is_not(None),
                extract("month", Member.birth_date) == month,
                where_they_live,
            )
        )
    return queries


def audience(session: Session, rule: str | None) -> Any:
    """The audience filter as a condition on Member.id (true when there is none)."""
    if rule is None:
        return literal(True)
    condition = analytics.rule_condition(rule)
    return exists().where(and_(MemberScore.member_id == Member.id, condition))


def stamp_text(stamp: Any) -> str:
    if isinstance(stamp, datetime):
        return stamp.date().isoformat()
    return str(stamp)
