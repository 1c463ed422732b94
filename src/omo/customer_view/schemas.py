"""The single customer view: one person across every channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from omo.commerce.schemas import StatsRead
from omo.identity.schemas import MergeRead
from omo.members.schemas import ConsentRead, IdentifierRead, MemberRead
from omo.shared.schemas import ReadModel


class TimelineItem(ReadModel):
    type: Literal["order", "event"]
    at: datetime
    channel: str
    store_id: int | None
    summary: str = Field(description="one line a person can read")
    ref: str = Field(description="channel order id or event id")
    detail: dict[str, Any]


class CustomerView(ReadModel):
    member: MemberRead
    requested_id: int = Field(description="the id asked for; differs from member.id after a merge")
    identifiers: list[IdentifierRead]
    consents: list[ConsentRead]
    stats: StatsRead | None
    merged_member_ids: list[int]
    merges: list[MergeRead]
    timeline: list[TimelineItem]
