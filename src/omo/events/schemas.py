"""Request and response shapes of the events area."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from omo.commerce.channels import Channel
from omo.events.kinds import SKU_KINDS, SURVEY_RANGES, EventKind
from omo.members.schemas import IdentifierIn
from omo.shared.schemas import MAX_ID, AwareDatetime, ReadModel, StrictModel


class EventIn(StrictModel):
    event_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    kind: EventKind
    occurred_at: AwareDatetime
    channel: Channel
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=10)
    store: str | None = Field(default=None, max_length=32, description="store code")
    sku: str | None = Field(default=None, max_length=64)
    query: str | None = Field(default=None, max_length=200)
    utm_source: str | None = Field(default=None, max_length=64)
    utm_medium: str | None = Field(default=None, max_length=64)
    utm_campaign: str | None = Field(default=None, max_length=128)
    survey: Literal["nps", "csat"] | None = None
    score: int | None = None
    properties: dict[str, Any] | None = Field(default=None, description="free-form, ≤ 4 KB")

    @model_validator(mode="after")
    def _kind_needs(self) -> EventIn:
        if self.kind in SKU_KINDS and not self.sku:
            raise ValueError(f"sku: required for {self.kind.value} events")
        if self.kind == EventKind.SEARCH and not self.query:
            raise ValueError("query: required for search events")
        if self.kind == EventKind.AD_CLICK and not (self.utm_source or self.utm_campaign):
            raise ValueError("utm_source: ad_click events need utm_source or utm_campaign")
        if self.kind == EventKind.FEEDBACK:
            if self.survey is None or self.score is None:
                raise ValueError("survey: feedback events need survey (nps|csat) and score")
            low, high = SURVEY_RANGES[self.survey]
            if not low <= self.score <= high:
                raise ValueError(f"score: {self.survey} scores run from {low} to {high}")
        elif self.score is not None or self.survey is not None:
            raise ValueError("score: only feedback events carry a survey score")
        if self.kind == EventKind.STAFF_INTERACTION and not self.store:
            raise ValueError("store: staff_interaction events name the store")
        if self.properties is not None and len(str(self.properties)) > 4096:
            raise ValueError("properties: larger than 4 KB")
        return self


class EventBatch(StrictModel):
    events: list[EventIn] = Field(min_length=1)


class EventBatchResult(ReadModel):
    accepted: int = Field(description="events written by this call")
    duplicates: int = Field(description="events already recorded (same event_id): ignored")
    linked_to_members: int = Field(description="accepted events tied to a member")


class EventRead(ReadModel):
    event_id: str
    kind: str
    occurred_at: datetime
    channel: str
    member_id: int | None
    store_id: int | None
    sku: str | None
    query: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    survey: str | None
    score: int | None
    properties: dict[str, Any] | None
