"""/api/v1 coupons: templates, issuing, checking and redeeming codes, QR images, KPIs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from omo.apikeys.service import Principal
from omo.coupons import claims
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.coupons.schemas import (
    CheckRequest,
    ClaimableRead,
    ClaimRequest,
    CouponCheck,
    CouponRead,
    IssueRequest,
    IssueResult,
    RedeemRequest,
    RedemptionRead,
    TemplateKpis,
    TemplateRead,
)
from omo.http import AppSettings, PooledRoute, UoW, scoped
from omo.shared.schemas import MAX_ID

router = APIRouter(tags=["coupons"], route_class=PooledRoute)
TemplateCode = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")]
Code = Annotated[str, Path(min_length=4, max_length=40)]


@router.put("/coupons/templates/{code}", response_model=TemplateRead, summary="Create or change")
def put_template(
    code: TemplateCode,
    template: CouponTemplate,
    response: Response,
    uow: UoW,
    settings: AppSettings,
    caller: Principal = scoped("loyalty:admin"),
) -> TemplateRead:
    read, created = coupons.put_template(uow, code=code, template=template, actor=caller.name,
                                         unit=settings.price_unit)  # fmt: skip
    response.status_code = 201 if created else 200
    return read


@router.get("/coupons/templates", response_model=list[TemplateRead], summary="All templates")
def list_templates(uow: UoW, caller: Principal = scoped("members:read")) -> list[TemplateRead]:
    return coupons.list_templates(uow)


@router.post(
    "/coupons/templates/{code}/issue",
    response_model=IssueResult,
    summary="Issue to members (idempotent on key)",
)
def issue(
    code: TemplateCode, body: IssueRequest, uow: UoW, caller: Principal = scoped("loyalty:admin")
) -> IssueResult:
    return coupons.issue(uow, template_code=code, member_ids=body.member_ids, key=body.key)


@router.post(
    "/coupons/templates/{code}/shared-code",
    response_model=CouponRead,
    summary="The public code of a shared-code template",
)
def shared_code(
    code: TemplateCode, uow: UoW, caller: Principal = scoped("loyalty:admin")
) -> CouponRead:
    return coupons.shared_code(uow, template_code=code)


@router.get("/coupons/kpis", response_model=list[TemplateKpis], summary="Issue → redemption, cost")
def kpis(uow: UoW, caller: Principal = scoped("kpis:read")) -> list[TemplateKpis]:
    return coupons.kpis(uow)


@router.get("/coupons/{code}", response_model=CouponRead, summary="One coupon")
def get_coupon(code: Code, uow: UoW, caller: Principal = scoped("members:read")) -> CouponRead:
    """Codes are read in any case; `templates` in lower case is `GET /coupons/templates` (the
    templates' list, matched first): send that code as `TEMPLATES`."""
    return coupons.get_coupon(uow, code=code)


@router.get(
    "/coupons/{code}/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="The code as a QR image",
)
def qr(code: Code, uow: UoW, caller: Principal = scoped("members:read")) -> Response:
    coupon = coupons.get_coupon(uow, code=code)
    return Response(coupons.qr_png(coupon.code), media_type="image/png")


@router.post("/coupons/{code}/check", response_model=CouponCheck, summary="Would it apply?")
def check(
    code: Code, body: CheckRequest, uow: UoW, settings: AppSettings,
    caller: Principal = scoped("members:read"),
) -> CouponCheck:  # fmt: skip
    return coupons.check(uow, code=code, basket=body.basket, member_id=body.member_id,
                         unit=settings.price_unit)  # fmt: skip


@router.post(
    "/coupons/{code}/redeem",
    response_model=RedemptionRead,
    summary="Use it (at most once; idempotent on idempotency_key)",
)
def redeem(
    code: Code, body: RedeemRequest, uow: UoW, settings: AppSettings,
    caller: Principal = scoped("orders:write"),
) -> RedemptionRead:  # fmt: skip
    return coupons.redeem(
        uow,
        code=code,
        basket=body.basket,
        member_id=body.member_id,
        key=body.idempotency_key,
        unit=settings.price_unit,
    )


@router.post(
    "/coupons/redemptions/{key}/reverse",
    response_model=RedemptionRead,
    summary="Undo a redemption (refund)",
)
def reverse(
    key: Annotated[str, Path(min_length=1, max_length=120)],
    uow: UoW,
    caller: Principal = scoped("orders:write"),
) -> RedemptionRead:
    return coupons.reverse(uow, key=key)


@router.get(
    "/members/{member_id}/coupons", response_model=list[CouponRead], summary="A member's coupons"
)
def member_coupons(
    member_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    uow: UoW,
    caller: Principal = scoped("members:read"),
) -> list[CouponRead]:
    return coupons.member_coupons(uow, member_id=member_id)


@router.get(
    "/members/{member_id}/coupons/claimable",
    response_model=list[ClaimableRead],
    summary="Coupons the member may claim now (領券中心)",
)
def claimable(
    member_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    uow: UoW,
    caller: Principal = scoped("members:read"),
) -> list[ClaimableRead]:
    return claims.claimable(uow, member_id=member_id)


@router.post(
    "/members/{member_id}/coupons/claim",
    response_model=CouponRead,
    summary="Claim one (idempotent on idempotency_key)",
)
def claim(
    member_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: ClaimRequest,
    uow: UoW,
    caller: Principal = scoped("members:write"),
) -> CouponRead:
    return claims.claim(
        uow, member_id=member_id, template_code=body.template, key=body.idempotency_key
    )
