"""What the tasks area answers."""

from __future__ import annotations

from datetime import datetime

from omo.shared.schemas import ReadModel


class TaskRead(ReadModel):
    id: int
    member_id: int
    store_id: int | None
    kind: str
    note: str
    created_at: datetime
    done_at: datetime | None
