"""Tables of the rewards area: the catalogue, and each redemption."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import Money, UtcDateTime


class Reward(Base):
    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))  # product | gift | service | partner
    partner: Mapped[str | None] = mapped_column(String(80))
    points: Mapped[int] = mapped_column(Integer)  # the price of one
    cash: Mapped[Decimal | None] = mapped_column(Money)  # paid beside the points (加價購)
    # left to give; none: unlimited. Moved by conditional UPDATEs, so tills cannot overdraw it
    stock: Mapped[int | None] = mapped_column(Integer)
    per_member: Mapped[int | None] = mapped_column(Integer)  # most one member may hold
    min_level: Mapped[str | None] = mapped_column(String(32))  # this tier level and above
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    early_access_days: Mapped[int] = mapped_column(Integer)  # before valid_from, for early access
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RewardRedemption(Base):
    """A member's purchase of a reward with points. Whose it is follows its points entry: a
    merge moves the absorbed member's entries, and their redemptions with them."""

    __tablename__ = "reward_redemptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    cash: Mapped[Decimal | None] = mapped_column(Money)  # collected beside the points
    channel: Mapped[str | None] = mapped_column(String(16))
    store: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12))  # redeemed | cancelled
    actor: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # partner rewards: the code the member shows at the partner, used once
    voucher: Mapped[str | None] = mapped_column(String(16), unique=True)
    # handed over at a till, shipped, or the voucher used at the partner; none: still owed
    fulfilled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    fulfilled_store: Mapped[str | None] = mapped_column(String(32))
    fulfilled_by: Mapped[str | None] = mapped_column(String(80))
    reference: Mapped[str | None] = mapped_column(String(120))  # a parcel's tracking no., a note


class RewardStockMove(Base):
    """Units added to (or written off) a reward's stock, once per idempotency key."""

    __tablename__ = "reward_stock_moves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    units: Mapped[int] = mapped_column(Integer)  # added; below zero: written off
    stock_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
