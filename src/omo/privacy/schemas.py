"""What the privacy area answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ErasureRead(BaseModel):
    member_id: int
    member_ids: list[int]
    erased_at: datetime
    actor: str
