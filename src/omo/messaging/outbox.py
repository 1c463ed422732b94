"""Publishing facts to the outbox, inside the caller's transaction: if the transaction rolls
back, the fact was never published; if it commits, a dispatcher delivers it at least once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from omo.db import is_postgres
from omo.messaging.models import OutboxMessage
from omo.shared.prepared import Prepared

TOPICS = frozenset(
    {
        "MemberEnrolled",
        "OrderRecorded",
        "OrderRefunded",
        "TierChanged",
        "PointsRedeemed",
        "PointsRedemptionCancelled",
        "RewardRedeemed",
        "RewardCancelled",
        "RewardFulfilled",
        "ReferralRewarded",
        "ReferralRevoked",
        "WebhookSwitchedOff",
        "MemberErased",
        "StoreDayClosed",
        "StoreDayReopened",
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
    _queue(session, topic, key, payload, now, look_up=not new_key)


def _queue(
    session: Session, topic: str, key: str, payload: dict[str, Any], now: datetime, *,
    look_up: bool,
) -> bool:  # fmt: skip
    if look_up and _QUEUED.first(session, {"key": key}) is not None:
        return False
    # sent with the transaction's next statement, or before its COMMIT (shared/prepared.py)
    _INSERT_MESSAGE.execute_later(session, _pending(topic, key, payload, now))
    return True


# prepared (shared/prepared.py): every sale publishes, and the ORM's flush cost more than the
# INSERT; pending ORM rows go first, as an autoflush would send them
_INSERT_MESSAGE = Prepared(insert(OutboxMessage.__table__))  # type: ignore[arg-type]
_QUEUED = Prepared(select(OutboxMessage.id).where(OutboxMessage.key == bindparam("key")))


def _pending(topic: str, key: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A new message's row, every column given (a prepared INSERT applies no defaults)."""
    return {
        "topic": topic, "key": key, "payload": payload, "created_at": now, "available_at": now,
        "attempts": 0, "state": "pending", "delivered_at": None, "last_error": None,
    }  # fmt: skip


def _message(topic: str, key: str, payload: dict[str, Any], now: datetime) -> OutboxMessage:
    return OutboxMessage(**_pending(topic, key, payload, now))


# up to this many facts, a look-up and an INSERT each cost less than one IN look-up and a flush
_ONE_BY_ONE = 4


def publish_many(
    session: Session, facts: Sequence[tuple[str, str, dict[str, Any]]], *, now: datetime
) -> int:
    """publish for many (topic, key, payload) facts at once: one look-up of the keys already
    queued and one flush, instead of one each (a batch of merges changes hundreds of tiers).
    Returns how many were queued."""
    if unknown := {topic for topic, _k, _p in facts} - TOPICS:
        raise ValueError(f"unknown topic(s) {sorted(unknown)!r}")
    if len(facts) <= _ONE_BY_ONE:  # a sale's tier change: a prepared look-up and INSERT each
        return sum(_queue(session, *fact, now, look_up=True) for fact in facts)
    keys = [key for _t, key, _p in facts]
    held: set[str] = set()
    for start in range(0, len(keys), 500):
        held.update(
            session.scalars(
                select(OutboxMessage.key).where(OutboxMessage.key.in_(keys[start : start + 500]))
            )
        )
    fresh = []
    for topic, key, payload in facts:
        if key in held:
            continue
        held.add(key)
        fresh.append(_message(topic, key, payload, now))
    session.add_all(fresh)
    session.flush()
    return len(fresh)


def backlog(session: Session) -> dict[str, int]:
    """Messages waiting, per topic (a metric for operations)."""
    rows = session.execute(
        select(OutboxMessage.topic, func.count())
        .where(OutboxMessage.state == "pending")
        .group_by(OutboxMessage.topic)
    )
    return {str(topic): int(n) for topic, n in rows}


def unread(
    session: Session, *, after: int, now: datetime, settle_s: float, limit: int
) -> list[OutboxMessage]:
    """Facts past position `after`, oldest first, that have settled: on PostgreSQL those at
    least `settle_s` old at `now` (a transaction that took a lower id may commit after one with
    a higher id); on SQLite all (its one writer commits in order)."""
    settled_before = now - timedelta(seconds=settle_s) if is_postgres(session) else now
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


def last_id(session: Session) -> int:
    """The newest fact's position (0: none yet)."""
    return session.scalar(select(func.max(OutboxMessage.id))) or 0


def count_after(session: Session, *, after: int, topics: Sequence[str]) -> int:
    """Facts past position `after`, of these topics (all if none)."""
    query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.id > after)
    if topics:
        query = query.where(OutboxMessage.topic.in_(topics))
    return session.scalar(query) or 0
