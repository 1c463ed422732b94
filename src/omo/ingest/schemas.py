"""Results of the ingest use cases."""

from __future__ import annotations

from pydantic import Field

from omo.members.schemas import MemberRead
from omo.shared.schemas import ReadModel


class EnrolResult(ReadModel):
    member: MemberRead
    created: bool = Field(description="a new member was enrolled (false: an existing one updated)")
    merged_member_ids: list[int] = Field(
        description="members found to be the same person by these identifiers and merged in"
    )
    linked_guest_orders: int
    linked_events: int
