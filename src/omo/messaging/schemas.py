"""What the messaging area answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from omo.shared.schemas import ReadModel


class MessageRead(ReadModel):
    id: int
    channel: str
    template: str
    locale: str
    state: str = Field(description="queued, sending, sent, dead or suppressed")
    reason: str | None = Field(description="why it was suppressed (consent, cap, no_address …)")
    subject: str | None
    body: str
    attempts: int
    last_error: str | None
    journey_id: int | None
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None


class DeliveryReport(BaseModel):
    sent: int = 0
    retried: int = 0
    dead: int = 0
    withdrawn: int = Field(default=0, description="opted out while the message waited")


class PushSubscriptionIn(BaseModel):
    endpoint: str = Field(min_length=10, max_length=1000, pattern=r"^https://")
    p256dh: str = Field(min_length=10, max_length=200)
    auth: str = Field(min_length=4, max_length=100)
