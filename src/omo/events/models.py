"""Behaviour events from every channel: views, carts, ad clicks, LINE follows, feedback …"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import UtcDateTime


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    channel: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    sku: Mapped[str | None] = mapped_column(String(64))
    query: Mapped[str | None] = mapped_column(String(200))
    utm_source: Mapped[str | None] = mapped_column(String(64))
    utm_medium: Mapped[str | None] = mapped_column(String(64))
    utm_campaign: Mapped[str | None] = mapped_column(String(128))
    survey: Mapped[str | None] = mapped_column(String(8))
    score: Mapped[int | None] = mapped_column(Integer)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The first identifier of an event no member claimed yet, for linking on enrolment.
    contact_kind: Mapped[str | None] = mapped_column(String(24))
    contact_namespace: Mapped[str | None] = mapped_column(String(24))
    contact_value: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        # kind, survey and score ride along: the refresh reads the members' events from this
        # index alone. Not the member in the kind index: a merge would rewrite an entry at a
        # random place of it for every event it moves (migration 0021)
        Index("ix_events_member_occurred", "member_id", "occurred_at", "kind", "survey", "score"),
        Index("ix_events_kind_occurred", "kind", "occurred_at"),
        Index("ix_events_contact", "contact_kind", "contact_namespace", "contact_value"),
    )
