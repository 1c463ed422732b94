"""The outbox: facts written in the same transaction as their cause, delivered after commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import UtcDateTime


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(40))  # OrderRecorded, TierChanged, …
    key: Mapped[str] = mapped_column(String(160), unique=True)  # one message per fact
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # pending | delivered | dead
    state: Mapped[str] = mapped_column(String(10), default="pending")
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_outbox_pending", "state", "available_at"),)


class OutboxPruning(Base):
    """Facts removed from the outbox once past retention: every fact up to `through_id` is gone
    (a reader whose position is behind it missed some)."""

    __tablename__ = "outbox_prunings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    through_id: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[int] = mapped_column(Integer)
    cutoff: Mapped[datetime] = mapped_column(UtcDateTime)  # facts published before it went
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class Message(Base):
    """One message to one member on one channel, from queueing to delivery (or why not)."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)  # one message per cause
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    channel: Mapped[str] = mapped_column(String(8))  # email | sms | line | push
    template: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(8))
    address: Mapped[str | None] = mapped_column(String(2000))  # where it went: e-mail, phone …
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    links: Mapped[list[str]] = mapped_column(JSON)  # targets of the tracked links, in order
    coupon_code: Mapped[str | None] = mapped_column(String(32))
    # queued → sending → sent; failed attempts go back to queued until dead; suppressed = never
    # sent, with the reason (consent, cap, no_address, unsubscribed)
    state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    token: Mapped[str] = mapped_column(String(32), unique=True)  # tracked links, unsubscribe
    journey_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_messages_due", "state", "next_attempt_at"),
        Index("ix_messages_member_channel", "member_id", "channel", "created_at"),
        Index("ix_messages_journey", "journey_id"),
    )


class PushSubscription(Base):
    """A browser's web-push subscription of a member (endpoint and keys from the Push API)."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
