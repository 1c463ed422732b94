"""Use cases of the events area; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from omo.events.models import Event
from omo.events.schemas import EventIn
from omo.members.identifiers import Identifier
from omo.shared.reassign import reassign_rows
from omo.shared.rows import rows_of
from omo.shared.sqlmatch import keys_in


@dataclass(frozen=True, slots=True)
class ResolvedEvent:
    event: EventIn
    member_id: int | None
    store_id: int | None
    contact: Identifier | None


def known_event_ids(session: Session, event_ids: Iterable[str]) -> set[str]:
    ids = list(event_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(
            session.scalars(
                select(Event.event_id).where(Event.event_id.in_(ids[start : start + 500]))
            )
        )
    return found


def record_events(session: Session, *, events: Sequence[ResolvedEvent], now: datetime) -> int:
    """Insert events in one statement; the caller has filtered out those already known."""
    if not events:
        return 0
    rows = [
        {
            "event_id": r.event.event_id,
            "kind": r.event.kind.value,
            "occurred_at": r.event.occurred_at,
            "channel": r.event.channel.value,
            "member_id": r.member_id,
            "store_id": r.store_id,
            "sku": r.event.sku,
            "query": r.event.query,
            "utm_source": r.event.utm_source,
            "utm_medium": r.event.utm_medium,
            "utm_campaign": r.event.utm_campaign,
            "survey": r.event.survey,
            "score": r.event.score,
            "properties": r.event.properties,
            "contact_kind": r.contact.kind.value if r.contact and r.member_id is None else None,
            "contact_namespace": r.contact.namespace if r.contact and r.member_id is None else None,
            "contact_value": r.contact.value if r.contact and r.member_id is None else None,
            "created_at": now,
        }
        for r in events
    ]
    session.execute(insert(Event), rows)
    return len(rows)


def attach_guest_events(
    session: Session, *, identifiers: Iterable[Identifier], member_id: int
) -> int:
    keys = [(i.kind.value, i.namespace, i.value) for i in identifiers]
    if not keys:
        return 0
    result = session.execute(
        update(Event)
        .where(
            Event.member_id.is_(None),
            keys_in((Event.contact_kind, Event.contact_namespace, Event.contact_value), keys),
        )
        .values(member_id=member_id, contact_kind=None, contact_namespace=None, contact_value=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def guest_contacts_among(session: Session, identifiers: Sequence[Identifier]) -> set[Identifier]:
    """Those of the identifiers that anonymous events carry (bulk enrolment links only those)."""
    found: set[Identifier] = set()
    by_key = {(i.kind.value, i.namespace, i.value): i for i in identifiers}
    keys = list(by_key)
    for n in range(0, len(keys), 500):
        rows = session.execute(
            select(Event.contact_kind, Event.contact_namespace, Event.contact_value)
            .where(
                Event.member_id.is_(None),
                keys_in(
                    (Event.contact_kind, Event.contact_namespace, Event.contact_value),
                    keys[n : n + 500],
                ),
            )
            .distinct()
        )
        found.update(by_key[(str(k), ns or "", str(v))] for k, ns, v in rows)
    return found


def recent_events(session: Session, *, member_id: int, limit: int) -> list[Event]:
    return list(
        session.scalars(
            select(Event)
            .where(Event.member_id == member_id)
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(limit)
        )
    )


def carted_skus(session: Session, *, member_id: int, since: datetime, until: datetime) -> list[str]:
    """SKUs the member put in a cart in the period, most recent first, each once."""
    rows = session.scalars(
        select(Event.sku)
        .where(
            Event.member_id == member_id,
            Event.kind == "add_to_cart",
            Event.sku.is_not(None),
            Event.occurred_at >= since,
            Event.occurred_at <= until,
        )
        .order_by(Event.occurred_at.desc(), Event.id.desc())
    )
    return [str(s) for s in dict.fromkeys(rows)]


def member_touches(*, since: datetime, until: datetime) -> Any:
    """(channel, member_id, kind) of every identified member's event in [since, until): the
    event side of a funnel, for the caller to aggregate."""
    return select(Event.channel, Event.member_id, Event.kind).where(
        Event.occurred_at >= since, Event.occurred_at < until, Event.member_id.is_not(None)
    )


def ad_clicks(session: Session, *, since: datetime, until: datetime) -> list[Any]:
    """(member_id, occurred_at, channel, utm_source, utm_campaign) of identified members' ad
    clicks in [since, until), in time order."""
    return list(
        session.execute(
            select(
                Event.member_id, Event.occurred_at, Event.channel, Event.utm_source,
                Event.utm_campaign,
            )
            .where(
                Event.kind == "ad_click", Event.member_id.is_not(None),
                Event.occurred_at >= since, Event.occurred_at < until,
            )
            .order_by(Event.occurred_at, Event.id)
        )
    )  # fmt: skip


def first_adds(*, since: datetime, until: datetime) -> Any:
    """(member_id, channel, first_add): each member's first add-to-cart per channel in
    [since, until): the carts of a cart-abandonment figure."""
    return (
        select(Event.member_id, Event.channel, func.min(Event.occurred_at).label("first_add"))
        .where(
            Event.kind == "add_to_cart",
            Event.occurred_at >= since,
            Event.occurred_at < until,
            Event.member_id.is_not(None),
        )
        .group_by(Event.member_id, Event.channel)
    )


def reassign_members(session: Session, mapping: Mapping[int, int]) -> dict[int, list[int]]:
    return reassign_rows(session, id_col=Event.id, member_col=Event.member_id, mapping=mapping)


def restore_rows(session: Session, *, row_ids: Sequence[int], from_id: int, to_id: int) -> None:
    ids = list(row_ids)
    for start in range(0, len(ids), 500):
        session.execute(
            update(Event)
            .where(Event.id.in_(ids[start : start + 500]), Event.member_id == from_id)
            .values(member_id=to_id)
            .execution_options(synchronize_session=False)
        )


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {"events": rows_of(session, Event, Event.member_id, member_ids)}


def erase(session: Session, *, member_ids: Sequence[int]) -> None:
    """Drop what events carried about the person (contact, search text, free-form properties);
    the events stay for the funnel's counts."""
    session.execute(
        update(Event)
        .where(Event.member_id.in_(list(member_ids)))
        .values(contact_kind=None, contact_namespace=None, contact_value=None, query=None,
                properties=None)
    )  # fmt: skip
