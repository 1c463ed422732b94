"""/api/v1 privacy: a member's data export and erasure, and the audit log (scope privacy:admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from omo.apikeys.service import Principal
from omo.audit import service as audit
from omo.http import PooledRoute, UoW, scoped
from omo.privacy import service as privacy
from omo.privacy.schemas import ErasureRead
from omo.shared.schemas import MAX_ID

router = APIRouter(tags=["privacy"], route_class=PooledRoute)
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/members/{member_id}/export", summary="Everything held on a member (PDPA/GDPR)")
def export(
    member_id: MemberId, uow: UoW, caller: Principal = scoped("privacy:admin")
) -> dict[str, Any]:
    return privacy.export(uow, member_id=member_id, actor=caller.name)


@router.post(
    "/members/{member_id}/erase", response_model=ErasureRead,
    summary="Erase who the member is; orders, points and totals stay, anonymous",
)  # fmt: skip
def erase(
    member_id: MemberId, uow: UoW, caller: Principal = scoped("privacy:admin")
) -> ErasureRead:
    return privacy.erase(uow, member_id=member_id, actor=caller.name)


@router.get("/audit", summary="The audit log, newest first (admin actions, exports, erasures)")
def audit_log(
    uow: UoW,
    target: Annotated[str | None, Query(max_length=120)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    caller: Principal = scoped("privacy:admin"),
) -> list[dict[str, Any]]:
    return audit.entries(uow, target=target, limit=limit)
