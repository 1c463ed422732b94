"""Request and response shapes of the points area."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from omo.points.rules import PointsRules
from omo.shared.schemas import MoneyOut, ReadModel, StrictModel


class PointsChange(StrictModel):
    points: int = Field(ge=-10_000_000, le=10_000_000)
    idempotency_key: str = Field(
        min_length=1, max_length=120, pattern=r"^[\x21-\x7e]+$",
        description="the till's or system's id for this change; a retry changes nothing",
    )  # fmt: skip
    reason: str | None = Field(default=None, max_length=300)


class EntryRead(ReadModel):
    id: int
    kind: str
    points: int
    created_at: datetime
    order_id: int | None
    reason: str | None
    available_at: datetime | None
    expires_at: datetime | None
    remaining: int


class Expiring(ReadModel):
    expires_at: datetime
    points: int


class PointsSummary(ReadModel):
    member_id: int
    available: int = Field(description="spendable now")
    pending: int = Field(description="earned, waiting out the return window")
    value: MoneyOut = Field(description="what the available points are worth at the till")
    expiring: list[Expiring] = Field(description="points left per expiry moment, soonest first")
    history: list[EntryRead]


class ProgrammeRead(ReadModel):
    version: int
    rules: PointsRules
    created_at: datetime | None
    actor: str | None


__all__ = ["EntryRead", "Expiring", "PointsChange", "PointsSummary", "ProgrammeRead"]
