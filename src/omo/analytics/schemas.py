"""What the analytics API takes and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from omo.shared.schemas import MoneyOut, ReadModel


class RunRead(ReadModel):
    id: int
    engine: str
    status: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    members: int
    buyers: int
    policy: dict[str, Any] = Field(description="bins, segment rules, grades, lifecycle stages")
    models: dict[str, Any] = Field(description="fitted BG/NBD and Gamma-Gamma parameters")
    segments: dict[str, int]
    timings: dict[str, float]
    error: str | None


class ScoreRead(ReadModel):
    member_id: int
    run_id: int
    orders: int
    purchase_days: int
    spend: MoneyOut
    recency_days: int | None
    tenure_days: int | None
    online_orders: int
    offline_orders: int
    discount_share: float | None
    r: int | None
    f: int | None
    m: int | None
    segment: str
    grade: str | None
    lifecycle: str
    tags: list[str]
    p_alive: float | None = Field(description="probability the member still buys (BG/NBD)")
    purchases_90d: float | None
    purchases_365d: float | None
    expected_order_value: MoneyOut | None
    clv: MoneyOut | None = Field(description="expected spend in the next 365 days")
    clv_tier: str | None
    at_risk: bool


class ScorePage(ReadModel):
    total: int
    items: list[ScoreRead]


class SegmentRead(ReadModel):
    name: str
    rule: str = Field(description="in the rule language; 'others'/'prospect' are what is left")
    kind: str = Field(description="builtin (from the last refresh) or saved (a merchant's rule)")
    members: int


class SegmentCreate(ReadModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,39}$")
    rule: str = Field(min_length=1, max_length=500)


class RuleCheck(ReadModel):
    rule: str = Field(min_length=1, max_length=500)


class RuleCount(ReadModel):
    rule: str
    fields: list[str]
    members: int
    share: float = Field(description="of the members scored by the last refresh")
