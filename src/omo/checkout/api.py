"""/api/v1/checkout: quote a basket, commit it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from omo.apikeys.service import Principal
from omo.checkout import refunds
from omo.checkout import service as checkout
from omo.checkout.refunds import RefundRequest, RefundResult
from omo.checkout.schemas import CommitRequest, CommitResult, QuoteRead, QuoteRequest
from omo.http import AppSettings, PooledRoute, UoW, inline_first, scoped
from omo.shared.schemas import MAX_ID

router = APIRouter(tags=["checkout"], route_class=PooledRoute)


@router.post(
    "/checkout/quote",
    response_model=QuoteRead,
    summary="Price a basket: tier discount, coupons, points, points to earn",
)
@inline_first  # a till asks before each sale; a read waits for no one (SQLite, local PostgreSQL)
def quote(
    req: QuoteRequest, uow: UoW, settings: AppSettings, caller: Principal = scoped("members:read")
) -> QuoteRead:
    return checkout.quote(uow, req=req, region=settings.default_region)


@router.post(
    "/checkout/commit",
    response_model=CommitResult,
    summary="Record the sale with its loyalty in one transaction (idempotent on external_id)",
    responses={200: {"description": "a retry: the sale recorded the first time"}},
)
@inline_first  # a sale is one short write: it runs on the event loop when it can
def commit(
    req: CommitRequest,
    response: Response,
    uow: UoW,
    settings: AppSettings,
    caller: Principal = scoped("orders:write"),
) -> CommitResult:
    if req.points:
        caller.require("points:write")
    result = checkout.commit(
        uow, req=req, principal=caller, currency=settings.currency, region=settings.default_region
    )
    response.status_code = 200 if result.replayed else 201
    return result


@router.post(
    "/orders/{order_id}/refund",
    response_model=RefundResult,
    summary="Refund an order, whole or by lines: points, coupons and stats follow",
)
def refund(
    order_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    req: RefundRequest,
    uow: UoW,
    caller: Principal = scoped("orders:write"),
) -> RefundResult:
    return refunds.refund(uow, order_id=order_id, req=req, actor=caller.name)
