"""The audit log table (append-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import UtcDateTime


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(80))  # an API key's name, ui:<user>, cli
    action: Mapped[str] = mapped_column(String(40))  # apikey.create, member.erase …
    target: Mapped[str] = mapped_column(String(120))  # what it was done to: key name, member id
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)  # never personal data

    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_target", "target"))
