"""Publishing facts to the outbox, inside the caller's transaction: if the transaction rolls
back, the fact was never published; if it commits, a dispatcher delivers it at least once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from omo.messaging.models import OutboxMessage

TOPICS = frozenset(
    {
        "MemberEnrolled",
        "OrderRecorded",
        "OrderRefunded",
        "TierChanged",
        "PointsRedeemed",
        "MemberErased",
    }
)


def publish(
    session: Session, *, topic: str, key: str, payload: dict[str, Any], now: datetime,
    new_key: bool = False,
) -> None:  # fmt: skip
    """Queue a fact once (its key makes a replayed use case publish nothing new). `new_key`:
    the key names a row this transaction created (a new order's id), so it cannot be queued yet
    — and if it were, the key's unique index refuses the second."""
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}")
    if not new_key and session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.key == key)
    ) is not None:  # fmt: skip
        return
    session.add(
        OutboxMessage(
            topic=topic, key=key, payload=payload, created_at=now, available_at=now, attempts=0,
            state="pending",
        )
    )  # fmt: skip
    session.flush()


def backlog(session: Session) -> dict[str, int]:
    """Messages waiting, per topic (a metric for operations)."""
    rows = session.execute(
        select(OutboxMessage.topic, func.count())
        .where(OutboxMessage.state == "pending")
        .group_by(OutboxMessage.topic)
    )
    return {str(topic): int(n) for topic, n in rows}


def unread(
    session: Session, *, after: int, settled_before: datetime, limit: int
) -> list[OutboxMessage]:
    """Facts past position `after`, oldest first, that are at least as old as `settled_before`."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.id > after, OutboxMessage.created_at <= settled_before)
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
    )


def mark_delivered(session: Session, *, ids: list[int], now: datetime) -> None:
    """The dispatcher has handled these facts (whether or not anything listened to them)."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.state == "pending")
        .values(state="delivered", delivered_at=now)
    )
