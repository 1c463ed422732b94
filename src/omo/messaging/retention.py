"""The outbox kept to a retention period: facts published before the cutoff that the dispatcher
has read are removed from the oldest up, never past a fact still to keep (readers go by
position, so what is left stays one unbroken run) and never the newest (SQLite gives the next
row max(id) + 1: with the table empty, ids would start again under every reader's position).
Each removal is recorded with the position it went through, so a reader still behind it is told
instead of missing facts in silence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from omo.messaging.models import OutboxMessage, OutboxPruning


def prunable_through(session: Session, *, cutoff: datetime, limit: int) -> int:
    """The highest position, among the oldest `limit` facts, up to which every fact was
    published before `cutoff` and read by the dispatcher; 0: none."""
    newest = session.scalar(select(func.max(OutboxMessage.id))) or 0
    head = select(OutboxMessage.id, OutboxMessage.created_at, OutboxMessage.state).order_by(
        OutboxMessage.id
    )
    through = 0
    for size in (1, limit - 1):  # the oldest alone first: most passes find nothing to remove
        for position, created_at, state in session.execute(head.where(
            OutboxMessage.id > through).limit(size)
        ):  # fmt: skip
            if position >= newest or created_at >= cutoff or state == "pending":
                return through
            through = position
    return through


def count_between(session: Session, *, after: int, through: int, topics: Sequence[str]) -> int:
    """Facts past position `after` up to `through`, of these topics (all if none)."""
    query = select(func.count()).select_from(OutboxMessage)
    query = query.where(OutboxMessage.id > after, OutboxMessage.id <= through)
    if topics:
        query = query.where(OutboxMessage.topic.in_(topics))
    return session.scalar(query) or 0


def remove_through(
    session: Session, *, through: int, cutoff: datetime, now: datetime
) -> int:  # fmt: skip
    """Remove every fact up to position `through` and record it; how many went."""
    gone = session.execute(delete(OutboxMessage).where(OutboxMessage.id <= through))
    deleted = int(gone.rowcount)  # type: ignore[attr-defined]
    if deleted:
        session.add(OutboxPruning(through_id=through, deleted=deleted, cutoff=cutoff, at=now))
    return deleted


@dataclass(frozen=True)
class Kept:
    """Where the outbox stands for an operator: its oldest fact, and the last removal."""

    oldest_at: datetime | None  # none: the outbox is empty
    last_removed_at: datetime | None  # none: nothing was ever removed
    last_removed: int  # facts the last removal took
    through: int  # the position every fact up to which is gone


def kept(session: Session) -> Kept:
    """Two look-ups on keys: the oldest fact and the latest removal."""
    oldest = session.scalar(select(OutboxMessage.created_at).order_by(OutboxMessage.id).limit(1))
    last = session.scalars(select(OutboxPruning).order_by(OutboxPruning.id.desc()).limit(1)).first()
    return Kept(
        oldest_at=oldest, last_removed_at=last.at if last else None,
        last_removed=last.deleted if last else 0, through=last.through_id if last else 0,
    )  # fmt: skip


def pruned_through(session: Session) -> int:
    """The position up to which facts were removed (0: none ever was). Each removal goes past
    the one before, so the latest says it (a look-up on the key, not a scan: every poll asks)."""
    latest = select(OutboxPruning.through_id).order_by(OutboxPruning.id.desc()).limit(1)
    return session.scalar(latest) or 0
