"""/api/v1 referrals: a member's code and whom it brought."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from omo.apikeys.service import Principal
from omo.http import AppSettings, PooledRoute, UoW, scoped
from omo.referrals import service as referrals
from omo.referrals.service import ReferralCodeRead
from omo.shared.schemas import MAX_ID

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
