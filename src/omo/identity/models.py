"""The audit trail of merges: what moved where, so an unmerge can put it back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import UtcDateTime


class Merge(Base):
    __tablename__ = "identity_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    absorbed_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    # shared_identifier (deterministic, at write time) or manual
    reason: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    # {"area.table": [row ids]} re-pointed from absorbed to survivor
    moved: Mapped[dict[str, list[int]]] = mapped_column(JSON)
    # {"profile": {field: [before, after]}, "consents": {channel: [before, after]}}
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    undone_by: Mapped[str | None] = mapped_column(String(64))
