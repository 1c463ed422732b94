"""/api/v1/events: behaviour from every channel, in batches."""

from __future__ import annotations

from fastapi import APIRouter

from omo.apikeys.service import Principal
from omo.events.schemas import EventBatch, EventBatchResult
from omo.http import AppSettings, PooledRoute, UoW, scoped
from omo.ingest import service as ingest
from omo.shared.errors import ValidationFailed

router = APIRouter(tags=["events"], route_class=PooledRoute)


@router.post(
    "/events", response_model=EventBatchResult, summary="Record events (idempotent on event_id)"
)
def post_events(
    batch: EventBatch, uow: UoW, settings: AppSettings, caller: Principal = scoped("events:write")
) -> EventBatchResult:
    if len(batch.events) > settings.max_event_batch:
        raise ValidationFailed(
            f"at most {settings.max_event_batch} events per call", field="events"
        )
    return ingest.record_events(
        uow, batch=batch.events, principal=caller, region=settings.default_region
    )
