"""/api/v1/checkout: quote a basket, commit it."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.concurrency import run_in_threadpool

from omo.apikeys.service import Principal
from omo.checkout import refunds
from omo.checkout import service as checkout
from omo.checkout.refunds import RefundRequest, RefundResult
from omo.checkout.schemas import CommitRequest, CommitResult, QuoteRead, QuoteRequest
from omo.http import AppSettings, UoW, scoped

router = APIRouter(tags=["checkout"])

# The endpoints are `async def` and hand the use case to the thread pool themselves: FastAPI
# runs a plain `def` endpoint in the pool and then validates its response_model in the pool
# again, a second hand-off per call (under load, each is a wait for the GIL). A till's commit
# went from 366–381 to 383–390/s on SQLite with this alone.


@router.post(
    "/checkout/quote",
    response_model=QuoteRead,
    summary="Price a basket: tier discount, coupons, points, points to earn",
)
async def quote(
    req: QuoteRequest, uow: UoW, settings: AppSettings, caller: Principal = scoped("members:read")
) -> QuoteRead:
    return await run_in_threadpool(
        partial(checkout.quote, uow, req=req, region=settings.default_region)
    )


@router.post(
    "/checkout/commit",
    response_model=CommitResult,
    summary="Record the sale with its loyalty in one transaction (idempotent on external_id)",
    responses={200: {"description": "a retry: the sale recorded the first time"}},
)
async def commit(
    req: CommitRequest,
    response: Response,
    uow: UoW,
    settings: AppSettings,
    caller: Principal = scoped("orders:write"),
) -> CommitResult:
    if req.points:
        caller.require("points:write")
    result = await run_in_threadpool(
        partial(checkout.commit, uow, req=req, principal=caller, currency=settings.currency,
                region=settings.default_region)
    )  # fmt: skip
    response.status_code = 200 if result.replayed else 201
    return result


@router.post(
    "/orders/{order_id}/refund",
    response_model=RefundResult,
    summary="Refund an order, whole or by lines: points, coupons and stats follow",
)
async def refund(
    order_id: Annotated[int, Path(ge=1, le=2**62)],
    req: RefundRequest,
    uow: UoW,
    caller: Principal = scoped("orders:write"),
) -> RefundResult:
    return await run_in_threadpool(
        partial(refunds.refund, uow, order_id=order_id, req=req, actor=caller.name)
    )
