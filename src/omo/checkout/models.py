"""A store's day closed (日結確認): who closed it, when, and its figures at that moment — what
a franchise's settlement and the books take, kept while late sales and refunds still arrive."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import UtcDateTime


class StoreDayClosing(Base):
    __tablename__ = "store_day_closings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    day: Mapped[date] = mapped_column(Date)  # the brand's calendar day
    closed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_by: Mapped[str] = mapped_column(String(80))
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)  # the day's totals when closed
    # the ids of the day's orders those totals counted (none: closed before 0041, when a late
    # sale was told by its recorded time alone)
    counted: Mapped[list[int] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # closings
    # reopened (取消日結) since its last closing: the day is open until closed again
    reopened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reopened_by: Mapped[str | None] = mapped_column(String(80))
    reopen_reason: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("store_id", "day"),)
