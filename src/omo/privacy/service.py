"""A member's data rights: everything OMO holds on them as one JSON document, and erasure —
the person's identity removed from every area in one transaction while their orders, points
ledger, coupons and the figures built on them stay and still add up (the member becomes an
anonymous member). Each area exports and forgets its own tables; this orchestrates them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from omo.analytics import service as analytics
from omo.audit import service as audit
from omo.commerce import service as commerce
from omo.coupons import service as coupons
from omo.db import UnitOfWork
from omo.events import service as events
from omo.identity import service as identity
from omo.journeys import service as journeys
from omo.members import service as members
from omo.messaging import outbox
from omo.messaging import service as messaging
from omo.points import service as points
from omo.privacy.schemas import ErasureRead
from omo.referrals import service as referrals
from omo.rewards import service as rewards
from omo.shared import clock
from omo.tasks import service as tasks
from omo.tiers import service as tiers

EXPORTERS = (
    members.export_rows, commerce.export_rows, events.export_rows, points.export_rows,
    coupons.export_rows, tiers.export_rows, referrals.export_rows, messaging.export_rows,
    tasks.export_rows, journeys.export_rows, identity.export_rows, analytics.export_rows,
    rewards.export_rows,
)  # fmt: skip


def _people(session: Session, member_id: int) -> list[int]:
    """The member (as they are now, after any merge) and every member merged into them, however
    many merges back."""
    current = members.current_member(session, member_id).id
    return [current, *(m for m in members.merge_tree(session, [current]) if m != current)]


def export(uow: UnitOfWork, *, member_id: int, actor: str) -> dict[str, Any]:
    """Everything held on the member and on the records merged into them, table by table (the
    export itself is audited: it hands personal data out)."""
    with uow.read() as session:
        ids = _people(session, member_id)  # an unknown member is a 404 before anything else
    uow.run(
        lambda s: audit.record(s, actor=actor, action="member.export", target=f"member:{ids[0]}")
    )
    with uow.read() as session:
        tables: dict[str, Any] = {}
        for exporter in EXPORTERS:
            tables.update(exporter(session, ids))
        return {"member_id": ids[0], "member_ids": ids, "exported_at": clock.now().isoformat(),
                "tables": tables}  # fmt: skip


def erase(uow: UnitOfWork, *, member_id: int, actor: str) -> ErasureRead:
    """Forget who the member is, everywhere, at once; safe to repeat."""

    def run(session: Session) -> ErasureRead:
        now = clock.now()
        ids = _people(session, member_id)
        members.hold_members(session, ids)
        members.erase(session, member_ids=ids, now=now)
        commerce.erase(session, member_ids=ids)
        events.erase(session, member_ids=ids)
        messaging.erase(session, member_ids=ids)
        identity.erase(session, member_ids=ids)
        points.erase(session, member_ids=ids)
        rewards.erase(session, member_ids=ids)
        tiers.erase(session, member_ids=ids)
        audit.record(
            session, actor=actor, action="member.erase", target=f"member:{ids[0]}",
            detail={"member_ids": ids},
        )  # fmt: skip
        outbox.publish(
            session, topic="MemberErased", key=f"erased:{ids[0]}:{now.isoformat()}", now=now,
            payload={"member_ids": ids, "actor": actor},
        )  # fmt: skip
        return ErasureRead(member_id=ids[0], member_ids=ids, erased_at=now, actor=actor)

    return uow.run(run)
