"""Request and response shapes of the tiers area."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from omo.shared.schemas import MoneyOut, ReadModel
from omo.tiers.policy import Benefits, TierProgramme


class TierProgrammeRead(ReadModel):
    version: int
    programme: TierProgramme


class ChangeRead(ReadModel):
    from_level: str | None
    to_level: str
    reason: str
    created_at: datetime


class MemberTierRead(ReadModel):
    member_id: int
    level: str
    name: str
    benefits: Benefits
    since: datetime | None
    review_at: datetime | None = Field(description="when a downgrade could next apply")
    window_spend: MoneyOut
    window_points: int
    window_orders: int
    next_level: str | None
    next_name: str | None = None
    next_metric: str | None
    missing: Decimal | None = Field(description="what is still needed for the next level")
    to_keep: Decimal | None = Field(
        description="what keeps the level at its review and the window ending then still "
        "misses, as things stand (purchases that leave it before the review do not count; "
        "0: kept); none for the base level or a level by rank"
    )
    free_shipping_used: int = Field(description="the level's free shipments used this month")
    free_shipping_left: int = Field(description="free shipments left this month")
    history: list[ChangeRead]


class SpendBucket(ReadModel):
    low: MoneyOut
    high: MoneyOut
    members: int


class LevelCount(ReadModel):
    code: str
    name: str
    members: int = Field(description="members on the level now")
    would_qualify: int | None = Field(description="members whose window spend meets the rule")


class Distribution(ReadModel):
    members: int
    window_months: int
    quantiles: dict[str, MoneyOut] = Field(
        description="window spend (or largest order) at p50, p75, p90, p95, p99"
    )
    buckets: list[SpendBucket]
    levels: list[LevelCount]
