"""Request and response shapes of the webhooks area."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, Field, field_validator

from omo.messaging.outbox import TOPICS
from omo.shared.schemas import MAX_ID, ReadModel, StrictModel

NAME = r"^[A-Za-z0-9_\-]{1,40}$"


class WebhookIn(StrictModel):
    url: str = Field(
        max_length=500, pattern=r"^https?://[^\s/?#]+[^\s]*$",
        description="where each fact is posted (http or https)",
    )  # fmt: skip
    topics: list[str] = Field(
        default_factory=list, max_length=len(TOPICS),
        description=f"the facts to post; none: all. Known: {', '.join(sorted(TOPICS))}",
    )  # fmt: skip
    active: bool = Field(default=True, description="false: hold delivery (facts wait for it)")
    rotate_secret: bool = Field(
        default=False, description="a new signing secret, answered once (as at creation)"
    )
    position: int | None = Field(
        default=None, ge=0, le=MAX_ID,
        description="move the subscription to this outbox position: the facts after it are "
        "posted (again, for a receiver that lost them); none: where it stands (a new one: "
        "the newest fact)",
    )  # fmt: skip

    @field_validator("url")
    @classmethod
    def _parses(cls, url: str) -> str:
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a URL: {exc}") from None
        if not host:
            raise ValueError("a URL with a host")
        return url

    @field_validator("topics")
    @classmethod
    def _known(cls, topics: list[str]) -> list[str]:
        unknown = sorted(set(topics) - TOPICS)
        if unknown:
            raise ValueError(
                f"unknown topic(s) {', '.join(unknown)}; known: {', '.join(sorted(TOPICS))}"
            )
        return sorted(set(topics))


class WebhookRead(ReadModel):
    name: str
    url: str
    topics: list[str] = Field(description="the facts posted; empty: all")
    active: bool
    secret: str | None = Field(
        default=None, description="the signing secret: answered only when made (creation or "
        "rotate_secret); keep it, it is not shown again",
    )  # fmt: skip
    position: int = Field(description="the last outbox fact handled (posted or not its topic)")
    waiting: int = Field(description="facts of its topics past the position, not yet posted")
    delivered: int = Field(description="facts posted and answered 2xx, in all")
    skipped: int = Field(
        description="facts of its topics removed from the outbox (past OMO_OUTBOX_RETENTION_DAYS) "
        "before it posted them: switched off or failing that long"
    )
    failures: int = Field(description="failed attempts in a row since the last success")
    failing_since: datetime | None = Field(
        description="the first of those failures (none after a success, a new URL or switching "
        "it back on)"
    )
    switched_off_at: datetime | None = Field(
        description="when the scheduler switched it off for failing OMO_WEBHOOK_SWITCH_OFF_AFTER_H "
        "(and 10 times) in a row; `active: true` switches it back on"
    )
    next_at: datetime | None = Field(description="after a failure: the next attempt, not before")
    last_error: str | None
    last_delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class FactRead(ReadModel):
    id: int = Field(description="the fact's position in the outbox: ascending, with gaps")
    topic: str
    key: str = Field(description="names the fact; never changes (a receiver's idempotency key)")
    created_at: datetime
    payload: dict[str, Any]


class FactsPage(BaseModel):
    facts: list[FactRead] = Field(description="oldest first")
    next_after: int = Field(description="pass as `after` for the next page")
    more: bool = Field(description="a full page was read: ask again at once")


class PingRead(BaseModel):
    ok: bool = Field(description="the receiver answered 2xx")
    status: int | None = Field(description="its HTTP status (none: no answer)")
    error: str | None = Field(description="why not ok")
    key: str = Field(description="the ping's OMO-Event-Key")
    seconds: float = Field(description="how long the post took")


class WebhookReport(BaseModel):
    delivered: int = Field(description="facts posted and answered 2xx in this pass")
    failed: int = Field(description="subscriptions whose post failed (tried again later)")
    switched_off: list[str] = Field(
        default_factory=list,
        description="subscriptions switched off in this pass (failing too long)",
    )
