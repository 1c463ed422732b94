"""/api/v1 rewards: the catalogue and its stock, a member redeeming a reward with points,
handing it over or using its voucher, cancelling it, and what is owed to partners."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from omo.apikeys.service import Principal
from omo.commerce.schemas import CODE
from omo.http import AppSettings, PooledRoute, UoW, scoped
from omo.rewards import fulfilment, settlement
from omo.rewards import service as rewards
from omo.rewards.schemas import (
    REWARD_CODE,
    RedemptionCancel,
    RedemptionFulfil,
    RedemptionRead,
    RedemptionRow,
    RewardIn,
    RewardRead,
    RewardRedeem,
    SettlementRow,
    StockChange,
    StockRead,
)
from omo.shared.schemas import MAX_ID, Moment

router = APIRouter(tags=["rewards"], route_class=PooledRoute)
Code = Annotated[str, Path(pattern=REWARD_CODE)]
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]
Key = Annotated[str, Path(min_length=1, max_length=120)]


# three-segment paths first: `/rewards/{code}` would take `/rewards/redemptions` for a code
@router.get(
    "/rewards/redemptions/owed",
    response_model=list[RedemptionRow],
    summary="Redemptions not yet handed over, sent or used, oldest first",
)
def owed(
    uow: UoW,
    store: Annotated[str | None, Query(pattern=CODE, description="redeemed at this store")] = None,
    reward: Annotated[str | None, Query(pattern=REWARD_CODE)] = None,
    member_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    to_send: Annotated[bool, Query(description="only those with no store named")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    caller: Principal = scoped("members:read"),
) -> list[RedemptionRow]:
    return fulfilment.owed(
        uow, store=store, reward=reward, limit=limit, member_id=member_id, to_send=to_send
    )


@router.get(
    "/rewards/partners/settlement",
    response_model=list[SettlementRow],
    summary="Per partner reward: redeemed, used (the bill), cancelled, outstanding (default: 30 d)",
)
def partner_settlement(
    uow: UoW,
    from_: Annotated[Moment | None, Query(alias="from", description="start (inclusive)")] = None,
    to: Annotated[Moment | None, Query(description="end (exclusive); default now")] = None,
    partner: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    caller: Principal = scoped("kpis:read"),
) -> list[SettlementRow]:
    return settlement.partner_settlement(uow, since=from_, until=to, partner=partner)


@router.put("/rewards/{code}", response_model=RewardRead, summary="Create or change a reward")
def put_reward(
    code: Code,
    reward: RewardIn,
    response: Response,
    uow: UoW,
    settings: AppSettings,
    caller: Principal = scoped("loyalty:admin"),
) -> RewardRead:
    read, created = rewards.put_reward(uow, code=code, data=reward, actor=caller.name,
                                       unit=settings.price_unit)  # fmt: skip
    response.status_code = 201 if created else 200
    return read


@router.post(
    "/rewards/{code}/stock",
    response_model=StockRead,
    summary="Add units to what is left, or write some off (idempotent on idempotency_key)",
)
def change_stock(
    code: Code, body: StockChange, uow: UoW, caller: Principal = scoped("loyalty:admin")
) -> StockRead:
    return rewards.change_stock(uow, code=code, change=body, actor=caller.name)


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
    idempotency_key: Key,
    uow: UoW,
    body: RedemptionCancel | None = None,
    caller: Principal = scoped("points:write"),
) -> RedemptionRead:
    returned = body.returned if body is not None else False
    return rewards.cancel(
        uow, idempotency_key=idempotency_key, actor=caller.name, returned=returned
    )


@router.post(
    "/rewards/redemptions/{idempotency_key}/fulfil",
    response_model=RedemptionRead,
    summary="Hand over or send a product, gift or service (once)",
)
def fulfil(
    idempotency_key: Key,
    uow: UoW,
    body: RedemptionFulfil | None = None,
    caller: Principal = scoped("points:write"),
) -> RedemptionRead:
    return fulfilment.fulfil(
        uow, idempotency_key=idempotency_key, req=body or RedemptionFulfil(), actor=caller.name
    )


@router.post(
    "/rewards/vouchers/{voucher}/use",
    response_model=RedemptionRead,
    summary="A partner honours a voucher (once)",
)
def use_voucher(
    voucher: Annotated[str, Path(min_length=1, max_length=32)],
    uow: UoW,
    body: RedemptionFulfil | None = None,
    caller: Principal = scoped("points:write"),
) -> RedemptionRead:
    return fulfilment.use_voucher(
        uow, voucher=voucher, req=body or RedemptionFulfil(), actor=caller.name
    )
