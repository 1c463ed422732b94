"""/api/v1 merges, identity KPIs, resolution runs and the review queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from omo.apikeys.service import Principal
from omo.http import PooledRoute, UoW, scoped
from omo.identity import resolution, reviews
from omo.identity import service as identity
from omo.identity.schemas import (
    IdentityKpis,
    MergeRead,
    MergeRequest,
    ReviewDecision,
    ReviewPage,
    ReviewRead,
    RunRead,
)
from omo.shared.errors import ValidationFailed
from omo.shared.schemas import MAX_ID, Moment

router = APIRouter(tags=["identity"], route_class=PooledRoute)

Id = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post(
    "/members/{member_id}/merge",
    response_model=MergeRead,
    status_code=201,
    summary="Merge another member into this one",
)
def merge(
    member_id: Id, body: MergeRequest, uow: UoW, caller: Principal = scoped("identity:merge")
) -> MergeRead:
    return identity.merge_use_case(
        uow,
        survivor_id=member_id,
        absorbed_id=body.other_member_id,
        note=body.note,
        actor=caller.name,
    )


@router.get("/merges/{merge_id}", response_model=MergeRead, summary="One merge and what it moved")
def get_merge(merge_id: Id, uow: UoW, caller: Principal = scoped("members:read")) -> MergeRead:
    return identity.get_merge(uow, merge_id=merge_id)


@router.post("/merges/{merge_id}/undo", response_model=MergeRead, summary="Undo a merge exactly")
def undo(merge_id: Id, uow: UoW, caller: Principal = scoped("identity:merge")) -> MergeRead:
    return identity.undo_use_case(uow, merge_id=merge_id, actor=caller.name)


@router.get(
    "/kpis/identity",
    response_model=IdentityKpis,
    summary="Identification rate, duplicate-account rate, online/offline share",
)
def kpis(
    uow: UoW,
    from_: Annotated[Moment | None, Query(alias="from")] = None,
    to: Annotated[Moment | None, Query()] = None,
    caller: Principal = scoped("kpis:read"),
) -> IdentityKpis:
    if from_ and to and from_ >= to:  # both in UTC already (Moment)
        raise ValidationFailed("from must be before to", field="query.from")
    return identity.identity_kpis(uow, since=from_, until=to)


# --- probabilistic resolution: runs and the review queue ---------------------------------------


@router.get(
    "/identity/reviews",
    response_model=ReviewPage,
    summary="Pairs the resolver was unsure about, most probable first",
)
def list_reviews(
    uow: UoW,
    status: Annotated[
        str, Query(description="pending, accepted, rejected or obsolete")
    ] = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    caller: Principal = scoped("identity:merge"),
) -> ReviewPage:
    total, items = reviews.list_reviews(uow, status=status, limit=limit, offset=offset)
    return ReviewPage(total=total, items=items)


@router.get("/identity/reviews/{review_id}", response_model=ReviewRead, summary="One review")
def get_review(review_id: Id, uow: UoW, caller: Principal = scoped("identity:merge")) -> ReviewRead:
    return reviews.get_review(uow, review_id)


@router.post(
    "/identity/reviews/{review_id}/accept",
    response_model=ReviewRead,
    summary="One person: merge the pair (undoable like any merge)",
)
def accept_review(
    review_id: Id,
    uow: UoW,
    body: ReviewDecision | None = None,
    caller: Principal = scoped("identity:merge"),
) -> ReviewRead:
    note = body.note if body else None
    return reviews.accept(uow, review_id=review_id, note=note, actor=caller.name)


@router.post(
    "/identity/reviews/{review_id}/reject",
    response_model=ReviewRead,
    summary="Two people: remembered, never proposed or auto-merged again",
)
def reject_review(
    review_id: Id, uow: UoW, caller: Principal = scoped("identity:merge")
) -> ReviewRead:
    return reviews.reject(uow, review_id=review_id, actor=caller.name)


@router.get(
    "/identity/runs", response_model=list[RunRead], summary="Recent resolution runs, newest first"
)
def list_runs(
    uow: UoW,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    caller: Principal = scoped("kpis:read"),
) -> list[RunRead]:
    return resolution.list_runs(uow, limit=limit)


@router.get(
    "/identity/runs/{run_id}",
    response_model=RunRead,
    summary="One resolution run: trained model, counts, timings, KPIs before and after",
)
def get_run(run_id: Id, uow: UoW, caller: Principal = scoped("kpis:read")) -> RunRead:
    return resolution.get_run(uow, run_id)
