"""Tables of the tiers area: programme versions, each member's level, the history, and the
uses of counted benefits (the monthly free shipping)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import Money, UtcDateTime


class TierProgrammeVersion(Base):
    __tablename__ = "tier_programmes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    programme: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MemberTier(Base):
    __tablename__ = "member_tiers"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    level: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    review_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_member_tiers_review", "review_at"),)


class TierChange(Base):
    __tablename__ = "tier_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    from_level: Mapped[str | None] = mapped_column(String(32))
    to_level: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300))
    standing: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_tier_changes_member", "member_id", "created_at"),)


class TierBenefitUse(Base):
    """An order that used a counted benefit of its member's level (the monthly free shipping),
    and what it was worth. Whose use it is follows the order: a merge moves orders, and their
    uses with them. Given back when the order is refunded whole."""

    __tablename__ = "tier_benefit_uses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    benefit: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(7))  # "2026-12": the month, in the programme's zone
    amount: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    given_back_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("order_id", "benefit"),)
