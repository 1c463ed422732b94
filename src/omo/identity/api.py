"""/api/v1 merges and identity KPIs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from omo.apikeys.service import Principal
from omo.http import UoW, scoped
from omo.identity import service as identity
from omo.identity.schemas import IdentityKpis, MergeRead, MergeRequest
from omo.shared.clock import as_utc
from omo.shared.errors import ValidationFailed

router = APIRouter(tags=["identity"])

Id = Annotated[int, Path(ge=1, le=2**62)]


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
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    caller: Principal = scoped("kpis:read"),
) -> IdentityKpis:
    since = as_utc(from_) if from_ else None
    until = as_utc(to) if to else None
    if since and until and since >= until:
        raise ValidationFailed("from must be before to", field="query.from")
    return identity.identity_kpis(uow, since=since, until=until)
