"""/api/v1 tiers: the programme, a member's level and progress, the spend distribution."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from omo.apikeys.service import Principal
from omo.http import PooledRoute, UoW, scoped
from omo.shared.schemas import MAX_ID
from omo.tiers import grants
from omo.tiers import service as tiers
from omo.tiers.policy import TierProgramme
from omo.tiers.schemas import Distribution, MemberTierRead, TierProgrammeRead

router = APIRouter(tags=["tiers"], route_class=PooledRoute)


@router.get("/tiers/programme", response_model=TierProgrammeRead, summary="Levels in force")
def get_programme(uow: UoW, caller: Principal = scoped("members:read")) -> TierProgrammeRead:
    return tiers.get_programme(uow)


@router.put("/tiers/programme", response_model=TierProgrammeRead, summary="New levels")
def put_programme(
    programme: TierProgramme, uow: UoW, caller: Principal = scoped("loyalty:admin")
) -> TierProgrammeRead:
    return tiers.set_programme(uow, programme=programme, actor=caller.name)


@router.get(
    "/tiers/distribution",
    response_model=Distribution,
    summary="Spend over the window across members, to place thresholds",
)
def distribution(
    uow: UoW,
    buckets: Annotated[int, Query(ge=2, le=200)] = 20,
    measure: Annotated[
        Literal["spend", "single_order"],
        Query(description="the window's spend, or each member's largest order"),
    ] = "spend",
    caller: Principal = scoped("kpis:read"),
) -> Distribution:
    return tiers.distribution(uow, buckets=buckets, measure=measure)


@router.get(
    "/members/{member_id}/tier",
    response_model=MemberTierRead,
    summary="Level, benefits, progress to the next level, history",
)
def member_tier(
    member_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    uow: UoW,
    caller: Principal = scoped("members:read"),
) -> MemberTierRead:
    return tiers.member_tier(uow, member_id=member_id)


@router.put(
    "/members/{member_id}/tier",
    response_model=MemberTierRead,
    summary="Give a level by hand, held through a day (then reviewed as any level)",
)
def grant_tier(
    member_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    req: grants.TierGrant,
    uow: UoW,
    caller: Principal = scoped("loyalty:admin"),
) -> MemberTierRead:
    return grants.grant(uow, member_id=member_id, req=req, actor=caller.name)
