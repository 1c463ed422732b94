"""What the analytics API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    engine: str
    status: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    members: int
    buyers: int
    policy: dict[str, Any]
    models: dict[str, Any]
    segments: dict[str, int]
    timings: dict[str, float]
    error: str | None
