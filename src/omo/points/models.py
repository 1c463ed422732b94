"""Tables of the points area: the programme's rules (versioned) and the ledger.

The ledger is append-only. Credits (earn, positive adjustments) are lots with their own
available-from and expiry; every debit (redeem, expire, negative adjustment, reversal of an earn)
is allocated to lots, first to expire first; a reversed debit gives its allocations back with
negative allocations, so the lots keep their dates. `remaining` on a lot is a cache of
points − its allocations, kept in the same transaction and checked by tests and `omo check`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import UtcDateTime


class PointsProgramme(Base):
    """One version of the rules; the newest is in force."""

    __tablename__ = "points_programmes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PointsEntry(Base):
    __tablename__ = "points_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    # earn | redeem | expire | adjust | reverse | bonus
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(Integer)  # signed
    # what the client or the system keys the change by: a retry finds it and changes nothing
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"))
    reason: Mapped[str | None] = mapped_column(String(300))
    actor: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # credits only: a lot
    available_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    remaining: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        # covering (migration 0023): a tier window's earned points and a balance read only the
        # index, however long the member's history
        Index("ix_points_entries_member_created", "member_id", "created_at", "kind", "points"),
        Index("ix_points_entries_lots", "member_id", "remaining", "expires_at", "available_at"),
        Index("ix_points_entries_order", "order_id"),
        Index("ix_points_entries_expiring", "expires_at", "remaining"),
    )


class PointsAllocation(Base):
    """`points` of debit `debit_id` taken from lot `lot_id` (negative: given back)."""

    __tablename__ = "points_allocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    debit_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)
