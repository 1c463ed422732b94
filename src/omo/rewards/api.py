"""/api/v1 rewards: the catalogue, a member redeeming a reward with points, cancelling it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from omo.apikeys.service import Principal
from omo.http import PooledRoute, UoW, scoped
from omo.rewards import service as rewards
from omo.rewards.schemas import REWARD_CODE, RedemptionRead, RewardIn, RewardRead, RewardRedeem
from omo.shared.schemas import MAX_ID

router = APIRouter(tags=["rewards"], route_class=PooledRoute)
Code = Annotated[str, Path(pattern=REWARD_CODE)]
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.put("/rewards/{code}", response_model=RewardRead, summary="Create or change a reward")
def put_reward(
    code: Code,
    reward: RewardIn,
    response: Response,
    uow: UoW,
    caller: Principal = scoped("loyalty:admin"),
) -> RewardRead:
    read, created = rewards.put_reward(uow, code=code, data=reward, actor=caller.name)
    response.status_code = 201 if created else 200
    return read


@router.get("/rewards", response_model=list[RewardRead], summary="The catalogue")
def list_rewards(
    uow: UoW,
    available: Annotated[bool, Query(description="only what can be redeemed now")] = False,
    caller: Principal = scoped("members:read"),
) -> list[RewardRead]:
    return rewards.list_rewards(uow, available=available)


@router.get("/rewards/{code}", response_model=RewardRead, summary="One reward")
def get_reward(code: Code, uow: UoW, caller: Principal = scoped("members:read")) -> RewardRead:
    return rewards.get_reward(uow, code=code)


@router.post(
    "/members/{member_id}/rewards/{code}/redeem",
    response_model=RedemptionRead,
    status_code=201,
    summary="Redeem a reward with points (idempotent on idempotency_key)",
)
def redeem(
    member_id: MemberId,
    code: Code,
    body: RewardRedeem,
    uow: UoW,
    caller: Principal = scoped("points:write"),
) -> RedemptionRead:
    return rewards.redeem(uow, member_id=member_id, code=code, req=body, actor=caller.name)


@router.get(
    "/members/{member_id}/rewards",
    response_model=list[RedemptionRead],
    summary="The member's reward redemptions, newest first",
)
def member_redemptions(
    member_id: MemberId,
    uow: UoW,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    caller: Principal = scoped("members:read"),
) -> list[RedemptionRead]:
    return rewards.redemptions_of(uow, member_id=member_id, limit=limit)


@router.post(
    "/rewards/redemptions/{idempotency_key}/cancel",
    response_model=RedemptionRead,
    summary="Give a redemption back: points and stock",
)
def cancel(
    idempotency_key: Annotated[str, Path(min_length=1, max_length=120)],
    uow: UoW,
    caller: Principal = scoped("points:write"),
) -> RedemptionRead:
    return rewards.cancel(uow, idempotency_key=idempotency_key, actor=caller.name)
