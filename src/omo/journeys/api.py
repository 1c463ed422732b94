"""/api/v1 journeys: definitions, switching on and off, a scheduler pass, reports; staff tasks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response

from omo.apikeys.service import Principal
from omo.http import AppSettings, PooledRoute, UoW, scoped
from omo.journeys import report as reports
from omo.journeys import service as journeys
from omo.journeys.schemas import JobsReport, JourneyRead, JourneyReport
from omo.shared.errors import Forbidden
from omo.shared.schemas import MAX_ID
from omo.tasks import service as tasks
from omo.tasks.schemas import TaskRead

router = APIRouter(tags=["journeys"], route_class=PooledRoute)
Key = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z0-9_\-]+$")]


@router.get("/journeys", response_model=list[JourneyRead], summary="All journeys")
def list_journeys(uow: UoW, caller: Principal = scoped("kpis:read")) -> list[JourneyRead]:
    return journeys.list_journeys(uow)


@router.put(
    "/journeys/{key}", response_model=JourneyRead,
    summary="Create a journey or save a new version (saved switched off)",
)  # fmt: skip
def put_journey(
    key: Key,
    response: Response,
    uow: UoW,
    definition: Annotated[dict[str, Any], Body(description="see docs/journeys.md")],
    caller: Principal = scoped("marketing:admin"),
) -> JourneyRead:
    read, created = journeys.save(uow, key=key, raw=definition, actor=caller.name)
    response.status_code = 201 if created else 200
    return read


@router.get("/journeys/{key}", response_model=JourneyRead, summary="One journey")
def get_journey(key: Key, uow: UoW, caller: Principal = scoped("kpis:read")) -> JourneyRead:
    return journeys.get(uow, key=key)


@router.post("/journeys/{key}/enable", response_model=JourneyRead, summary="Switch on")
def enable(key: Key, uow: UoW, caller: Principal = scoped("marketing:admin")) -> JourneyRead:
    return journeys.set_enabled(uow, key=key, enabled=True, actor=caller.name)


@router.post("/journeys/{key}/disable", response_model=JourneyRead, summary="Switch off")
def disable(key: Key, uow: UoW, caller: Principal = scoped("marketing:admin")) -> JourneyRead:
    return journeys.set_enabled(uow, key=key, enabled=False, actor=caller.name)


@router.get(
    "/journeys/{key}/report", response_model=JourneyReport,
    summary="Sends, opens, clicks, conversions against the control group, uplift, ROI",
)  # fmt: skip
def journey_report(key: Key, uow: UoW, caller: Principal = scoped("kpis:read")) -> JourneyReport:
    return reports.report(uow, key=key)


@router.post("/jobs/run", response_model=JobsReport, summary="Run one scheduler pass now")
def run_jobs(
    request: Request, uow: UoW, settings: AppSettings,
    caller: Principal = scoped("marketing:admin"),
) -> JobsReport:  # fmt: skip
    return journeys.run_jobs(uow, settings=settings, adapters=request.app.state.adapters)


@router.get("/tasks", response_model=list[TaskRead], summary="Open staff tasks")
def open_tasks(
    uow: UoW,
    store_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    caller: Principal = scoped("members:read"),
) -> list[TaskRead]:
    if caller.store_id is not None:  # a store's key sees its own store's tasks
        if store_id not in (None, caller.store_id):
            raise Forbidden("this key is bound to another store", field="store_id")
        store_id = caller.store_id
    return tasks.open_tasks(uow, store_id=store_id)


@router.post("/tasks/{task_id}/done", response_model=TaskRead, summary="Mark a task done")
def complete_task(
    task_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    uow: UoW,
    caller: Principal = scoped("members:write"),
) -> TaskRead:
    return tasks.complete(uow, task_id=task_id, store_id=caller.store_id)
