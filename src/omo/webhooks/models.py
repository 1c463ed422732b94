"""A webhook subscription and where its delivery stands: the outbox position it has reached,
consecutive failures, when it is tried next, and the lease of the pass delivering it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import UtcDateTime


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(80))  # signs each body (HMAC-SHA256)
    topics: Mapped[list[str]] = mapped_column(JSON)  # empty: every topic
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # the last outbox id handled
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    # facts of its topics removed from the outbox (past retention) before it posted them
    skipped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row, since the last success
    # the first failure of the run of failures (none after a success, a new URL or switching on)
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # the scheduler switched it off, failing for OMO_WEBHOOK_SWITCH_OFF_AFTER_H (none: not so)
    switched_off_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # back-off after a failure
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime)  # a pass delivering it
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
