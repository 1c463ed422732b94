"""Request and response shapes of the points area."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from omo.members.schemas import IdentifierIn
from omo.points.rules import PointsRules
from omo.shared.schemas import MAX_ID, AwareDatetime, MoneyOut, ReadModel, StrictModel


class PointsChange(StrictModel):
    points: int = Field(ge=-10_000_000, le=10_000_000)
    idempotency_key: str = Field(
        min_length=1, max_length=120, pattern=r"^[\x21-\x7e]+$",
        description="the till's or system's id for this change; a retry changes nothing",
    )  # fmt: skip
    reason: str | None = Field(default=None, max_length=300)


class OpeningBalance(StrictModel):
    """Points a member brings from the programme before this one (`omo import points`): one
    lot, with its own expiry, so that what expires when carries over."""

    reference: str = Field(
        min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$",
        description="the previous system's id for this balance or lot: imported once",
    )  # fmt: skip
    points: int = Field(ge=1, le=10_000_000)
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=10)
    earned_at: AwareDatetime | None = Field(
        default=None, description="when they were earned: the programme's expiry counts from it"
    )
    available_at: AwareDatetime | None = Field(
        default=None, description="pending until then (default: spendable at once)"
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="default: the programme's expiry from earned_at"
    )
    reason: str | None = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _when(self) -> OpeningBalance:
        if self.expires_at is not None:
            if self.earned_at is not None and self.expires_at <= self.earned_at:
                raise ValueError("expires_at: must come after earned_at")
            if self.available_at is not None and self.expires_at <= self.available_at:
                raise ValueError("expires_at: must come after available_at")
        return self


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


__all__ = [
    "EntryRead",
    "Expiring",
    "OpeningBalance",
    "PointsChange",
    "PointsSummary",
    "ProgrammeRead",
]
