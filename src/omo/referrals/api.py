"""/api/v1 referrals: a member's code and whom it brought."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from omo.apikeys.service import Principal
from omo.http import AppSettings, PooledRoute, UoW, scoped
from omo.referrals import kpis
from omo.referrals import service as referrals
from omo.referrals.kpis import ReferralSummary
from omo.referrals.service import ReferralCodeRead, ReferralRead
from omo.shared.schemas import MAX_ID, Moment

router = APIRouter(tags=["referrals"], route_class=PooledRoute)


@router.get(
    "/members/{member_id}/referral",
    response_model=ReferralCodeRead,
    summary="The member's referral code (made on first ask), link, terms and whom it brought",
)
def referral(
    member_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    uow: UoW,
    settings: AppSettings,
    caller: Principal = scoped("members:read"),
) -> ReferralCodeRead:
    return referrals.code_for(uow, member_id=member_id, link=settings.referral_link)


@router.get(
    "/referrals", response_model=list[ReferralRead], summary="Referrals, newest first (review)"
)
def list_referrals(
    uow: UoW,
    status: Literal["pending", "held", "rewarded", "rejected", "lapsed"] | None = None,
    member_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="on either side")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="a referral id")] = None,
    caller: Principal = scoped("members:read"),
) -> list[ReferralRead]:
    return referrals.list_referrals(
        uow, status=status, member_id=member_id, limit=limit, before=before
    )


@router.get(
    "/referrals/summary",
    response_model=ReferralSummary,
    summary="Made, rewarded, conversion, points given, revenue, top referrers (default: 30 d)",
)
def referral_summary(
    uow: UoW,
    from_: Annotated[Moment | None, Query(alias="from", description="start (inclusive)")] = None,
    to: Annotated[Moment | None, Query(description="end (exclusive); default now")] = None,
    caller: Principal = scoped("kpis:read"),
) -> ReferralSummary:
    return kpis.summary(uow, since=from_, until=to)
