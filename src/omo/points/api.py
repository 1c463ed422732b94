"""/api/v1 points: a member's balance and history, redemptions, adjustments, the programme."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from omo.apikeys.service import Principal
from omo.http import AppSettings, DayAfter, FirstDay, PooledRoute, UoW, scoped
from omo.points import movements
from omo.points import service as points
from omo.points.movements import Movements, Period
from omo.points.rules import PointsRules
from omo.points.schemas import PointsChange, PointsSummary, ProgrammeRead
from omo.shared.schemas import MAX_ID

router = APIRouter(tags=["points"], route_class=PooledRoute)
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get(
    "/members/{member_id}/points",
    response_model=PointsSummary,
    summary="Balance, pending points, what expires when, and the history",
)
def get_points(
    member_id: MemberId,
    uow: UoW,
    history: Annotated[int, Query(ge=0, le=500)] = 50,
    caller: Principal = scoped("members:read"),
) -> PointsSummary:
    return points.summary(uow, member_id=member_id, history=history)


@router.post(
    "/members/{member_id}/points/redeem",
    response_model=PointsSummary,
    summary="Spend points (idempotent on idempotency_key)",
)
def redeem(
    member_id: MemberId, change: PointsChange, uow: UoW, caller: Principal = scoped("points:write")
) -> PointsSummary:
    return points.redeem(uow, member_id=member_id, change=change, actor=caller.name)


@router.post(
    "/points/redemptions/{idempotency_key}/cancel",
    response_model=PointsSummary,
    summary="Give a redemption back (a voided sale)",
)
def cancel(
    idempotency_key: Annotated[str, Path(min_length=1, max_length=120)],
    uow: UoW,
    caller: Principal = scoped("points:write"),
) -> PointsSummary:
    return points.cancel_redemption(uow, idempotency_key=idempotency_key, actor=caller.name)


@router.post(
    "/members/{member_id}/points/adjust",
    response_model=PointsSummary,
    summary="A staff correction, with a reason (idempotent on idempotency_key)",
)
def adjust(
    member_id: MemberId,
    change: PointsChange,
    uow: UoW,
    caller: Principal = scoped("loyalty:admin"),
) -> PointsSummary:
    return points.adjust(uow, member_id=member_id, change=change, actor=caller.name)


@router.get("/points/programme", response_model=ProgrammeRead, summary="The rules in force")
def get_programme(uow: UoW, caller: Principal = scoped("members:read")) -> ProgrammeRead:
    return points.get_programme(uow)


@router.put("/points/programme", response_model=ProgrammeRead, summary="New rules, from now on")
def put_programme(
    rules: PointsRules, uow: UoW, caller: Principal = scoped("loyalty:admin")
) -> ProgrammeRead:
    return points.set_programme(uow, rules=rules, actor=caller.name)


@router.get(
    "/points/movements",
    response_model=Movements,
    summary="The points ledger rolled forward by day or month: opening, what came in and went "
    "out, closing, and the liability (點數負債變動表)",
)
def get_movements(
    uow: UoW,
    settings: AppSettings,
    from_: FirstDay,
    to: DayAfter,
    by: Annotated[Period, Query()] = "month",
    caller: Principal = scoped("kpis:read"),
) -> Movements:
    return movements.movements(uow, start=from_, end=to, by=by, time_zone=settings.time_zone)
