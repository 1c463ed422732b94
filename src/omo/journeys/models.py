"""Tables of the journeys area: journeys and their versions, members' passages through them and
the steps taken."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import UtcDateTime


class Journey(Base):
    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)  # journeys/definition.py
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # seeds the control-group draw: members are drawn afresh for each journey
    salt: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class JourneyVersion(Base):
    """Every definition a journey had, with who changed it."""

    __tablename__ = "journey_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("journey_id", "version"),)


class JourneyEntry(Base):
    """One passage of a member through a journey; `occurrence` names what triggered it (the
    year of a birthday, the day of a last order, an outbox fact), so a trigger seen twice
    enters a member once."""

    __tablename__ = "journey_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"))
    version: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    occurrence: Mapped[str] = mapped_column(String(160))
    grp: Mapped[str] = mapped_column(String(10))  # treatment | control
    # active (steps to take) → done | exited (a condition stopped it); control entries are
    # held out and take no step
    state: Mapped[str] = mapped_column(String(10))
    step: Mapped[int] = mapped_column(Integer, default=0)  # the next step to take
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    entered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)  # e.g. the coupon a step issued

    __table_args__ = (
        UniqueConstraint("journey_id", "member_id", "occurrence"),
        Index("ix_journey_entries_due", "state", "due_at"),
        Index("ix_journey_entries_journey", "journey_id", "grp"),
    )


class JourneyStep(Base):
    """A step taken for an entry; unique, so a member never gets the same step twice."""

    __tablename__ = "journey_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journey_entries.id"))
    step: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(200))
    done_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("entry_id", "step"),)


class TriggerScan(Base):
    """Where an event-fed trigger stopped reading (the outbox id it reached)."""

    __tablename__ = "journey_scans"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    scanned_at: Mapped[datetime] = mapped_column(UtcDateTime)
