"""What the journeys area takes and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from omo.messaging.schemas import DeliveryReport
from omo.shared.schemas import MoneyOut, ReadModel
from omo.webhooks.schemas import WebhookReport


class JourneyRead(ReadModel):
    key: str
    name: str
    version: int
    enabled: bool
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class JobsReport(BaseModel):
    entered: dict[str, int] = Field(description="members who entered, per journey")
    advanced: int = Field(description="entries whose due steps were taken")
    delivery: DeliveryReport | None
    webhooks: WebhookReport | None = Field(
        default=None, description="facts posted to webhook subscriptions (none: not delivering)"
    )
    pruned: int = Field(
        default=0, description="facts removed from the outbox past OMO_OUTBOX_RETENTION_DAYS"
    )


class GroupFigures(BaseModel):
    members: int = Field(description="entries of the group")
    converted: int = Field(description="entries followed by a purchase within the window")
    conversion_rate: float
    revenue: MoneyOut = Field(description="of those purchases")
    revenue_per_member: MoneyOut
    discount: MoneyOut = Field(description="discounts on those purchases")


class Uplift(BaseModel):
    rate: float = Field(description="treatment conversion rate minus control's")
    low: float = Field(description="95 % confidence interval (normal approximation)")
    high: float
    significant: bool = Field(description="the interval excludes zero")


class JourneyReport(BaseModel):
    key: str
    version: int
    conversion_days: int
    control_share: float
    treatment: GroupFigures
    control: GroupFigures
    uplift: Uplift | None = Field(description="none until both groups have members")
    messages: dict[str, int] = Field(description="per state: queued, sent, dead, suppressed …")
    suppressed: dict[str, int] = Field(description="why messages were not sent")
    opened: int
    clicked: int
    open_rate: float = Field(description="opened / sent")
    click_rate: float = Field(description="clicked / sent")
    incremental_revenue: MoneyOut = Field(
        description="(treatment − control revenue per member) × treatment members"
    )
    discount_cost: MoneyOut = Field(description="discounts given on the treatment's purchases")
    roi: float | None = Field(
        description="(incremental revenue − discount cost) / discount cost; none without cost"
    )
