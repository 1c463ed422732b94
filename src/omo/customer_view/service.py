"""Read use cases that assemble the single customer view from every area."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from omo.commerce import service as commerce
from omo.commerce.schemas import StatsRead
from omo.customer_view.schemas import CustomerView, TimelineItem
from omo.db import UnitOfWork
from omo.events import service as events
from omo.identity.models import Merge
from omo.identity.schemas import MergeRead
from omo.members import service as members
from omo.members.identifiers import Identifier, InvalidIdentifier, normalise
from omo.members.models import Member
from omo.members.schemas import ConsentRead, IdentifierRead, MemberRead, MemberSummary
from omo.shared.errors import NotFound


def customer_view(uow: UnitOfWork, *, member_id: int, timeline_limit: int = 50) -> CustomerView:
    """Profile, identifiers, consents, stats, merge history and the cross-channel timeline."""
    with uow.read() as session:
        member = members.current_member(session, member_id)
        stats = commerce.stats_of(session, member.id)
        return CustomerView(
            member=MemberRead.model_validate(member),
            requested_id=member_id,
            identifiers=[
                IdentifierRead.model_validate(i) for i in members.identifiers_of(session, member.id)
            ],
            consents=[
                ConsentRead.model_validate(c) for c in members.consents_of(session, member.id)
            ],
            stats=StatsRead.model_validate(stats) if stats else None,
            merged_member_ids=members.merged_ids_of(session, member.id),
            merges=[MergeRead.model_validate(m) for m in _merges(session, member.id)],
            timeline=_timeline(session, member.id, timeline_limit),
        )


def lookup(uow: UnitOfWork, *, identifier: Identifier) -> MemberSummary:
    """The member an identifier names (POS look-up by phone, card, e-mail or LINE id)."""
    with uow.read() as session:
        named = members.members_named_by(session, [identifier])
        if identifier not in named:
            raise NotFound(
                f"no member has this {identifier.kind.value}", field=identifier.kind.value
            )
        return MemberSummary.model_validate(members.get_member(session, named[identifier]))


def find(uow: UnitOfWork, *, text: str, region: str, limit: int = 20) -> list[MemberSummary]:
    """Members a person at a desk means by what they typed: a phone, an e-mail, a card or LINE
    id, a member number (#42), or part of a name."""
    text = text.strip()
    if not text:
        return []
    with uow.read() as session:
        if text.startswith("#") and text[1:].isdigit():
            member = session.get(Member, int(text[1:]))
            found = [member] if member is not None and member.status == "active" else []
            return [MemberSummary.model_validate(m) for m in found]
        kinds = ("email",) if "@" in text else ("phone", "card", "line_id")
        candidates = []
        for kind in kinds:
            try:
                candidates.append(normalise(kind, text, region=region))
            except InvalidIdentifier:
                continue
        named = members.members_named_by(session, candidates)
        ids = list(dict.fromkeys(named.values()))
        rows = [members.get_member(session, i) for i in ids]
        if not rows and "@" not in text:
            rows = members.named_like(session, text, limit=limit)
        return [MemberSummary.model_validate(m) for m in rows[:limit]]


def _merges(session: Session, member_id: int) -> list[Merge]:
    return list(
        session.scalars(
            select(Merge)
            .where(or_(Merge.survivor_id == member_id, Merge.absorbed_id == member_id))
            .order_by(Merge.id)
        )
    )


def _timeline(session: Session, member_id: int, limit: int) -> list[TimelineItem]:
    items = [
        TimelineItem(
            type="order",
            at=o.ordered_at,
            channel=o.channel,
            store_id=o.store_id,
            summary=f"{o.status} order {o.currency} {o.total:.2f} ({o.fulfilment})",
            ref=o.external_id,
            detail={"order_id": o.id, "total": f"{o.total:.2f}", "status": o.status},
        )
        for o in commerce.recent_orders(session, member_id=member_id, limit=limit)
    ]
    for e in events.recent_events(session, member_id=member_id, limit=limit):
        what = e.sku or e.query or e.utm_campaign or (f"{e.survey} {e.score}" if e.survey else "")
        items.append(
            TimelineItem(
                type="event",
                at=e.occurred_at,
                channel=e.channel,
                store_id=e.store_id,
                summary=f"{e.kind} {what}".strip(),
                ref=e.event_id,
                detail={
                    k: v
                    for k, v in {
                        "kind": e.kind,
                        "sku": e.sku,
                        "query": e.query,
                        "utm_source": e.utm_source,
                        "utm_medium": e.utm_medium,
                        "utm_campaign": e.utm_campaign,
                        "survey": e.survey,
                        "score": e.score,
                    }.items()
                    if v is not None
                },
            )
        )
    items.sort(key=lambda i: i.at, reverse=True)
    return items[:limit]
