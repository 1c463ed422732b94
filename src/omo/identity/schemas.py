"""Request and response shapes of identity resolution."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from omo.shared.schemas import ReadModel, StrictModel


class MergeRequest(StrictModel):
    other_member_id: int = Field(ge=1, description="the member absorbed into the path's member")
    note: str | None = Field(default=None, max_length=500)


class MergeRead(ReadModel):
    id: int
    survivor_id: int
    absorbed_id: int
    reason: str
    evidence: dict[str, Any]
    moved: dict[str, list[int]]
    changes: dict[str, Any]
    actor: str | None
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None


class IdentityKpis(ReadModel):
    period_from: datetime | None
    period_to: datetime | None
    orders: int
    order_value: str
    identification_rate: float = Field(description="share of order value tied to a member")
    identified_order_share: float = Field(description="share of orders tied to a member")
    active_members: int
    merged_members: int
    suspected_duplicates: int = Field(
        description="active members sharing name and birth date with another active member"
    )
    duplicate_account_rate: float = Field(description="suspected_duplicates / active_members")
    online_spend_share: float
    offline_spend_share: float
