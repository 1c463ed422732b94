"""Request and response shapes of identity resolution."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field

from omo.shared.schemas import MAX_ID, ReadModel, StrictModel


class MergeRequest(StrictModel):
    other_member_id: int = Field(
        ge=1, le=MAX_ID, description="the member absorbed into the path's member"
    )
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
    resolution: ResolutionSummary | None = Field(
        default=None, description="the latest probabilistic resolution run (omo resolve)"
    )


class RunRead(ReadModel):
    id: int
    engine: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    thresholds: dict[str, float]
    records: int = Field(description="active members compared")
    pairs_scored: int = Field(description="pairs at or above the review threshold")
    merges: int
    reviews_queued: int
    model: dict[str, Any] = Field(description="prior and per field level: m, u, weight in bits")
    kpis: dict[str, Any] = Field(description="before/after: members, duplicate-account rate …")
    timings: dict[str, float]
    error: str | None


class MemberBrief(ReadModel):
    """What a reviewer needs to tell two members apart."""

    id: int
    status: str
    name: str | None
    gender: str | None
    birth_date: date | None
    city: str | None
    district: str | None
    address_line: str | None
    join_channel: str | None
    joined_at: datetime
    identifiers: list[str] = Field(description="kind:value, phones and e-mails masked")


class ReviewRead(ReadModel):
    id: int
    member_id: int
    other_member_id: int
    run_id: int
    match_probability: float
    match_weight: float
    weights: dict[str, Any] = Field(
        description="per field: the comparison level the pair fell in and its weight in bits"
    )
    status: str
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    merge_id: int | None
    member: MemberBrief | None = None
    other_member: MemberBrief | None = None


class ReviewDecision(StrictModel):
    note: str | None = Field(default=None, max_length=500)


class ResolutionSummary(ReadModel):
    run_id: int
    finished_at: datetime | None
    duplicate_rate_before: float
    duplicate_rate_after: float
    merges: int
    pending_reviews: int


class ReviewPage(ReadModel):
    total: int = Field(description="reviews with this status")
    items: list[ReviewRead]
