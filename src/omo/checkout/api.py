"""/api/v1/checkout: quote a basket, commit it."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.routing import APIRoute

from omo.apikeys.service import Principal
from omo.checkout import batch, best, dayclose, receipts, refunds
from omo.checkout import service as checkout
from omo.checkout.batch import BatchResult, SalesBatch
from omo.checkout.dayclose import Reconciliation, StoreDay, StoresDay, TillJournal, refund_clearing
from omo.checkout.dayclose.clearing import Clearing, clearing
from omo.checkout.dayclose.refund_clearing import RefundsClearing
from omo.checkout.dayclose.schemas import DayClosing, DayReopened, ReopenIn
from omo.checkout.receipts import OrderDetail
from omo.checkout.refunds import RefundLines, RefundQuote, RefundRequest, RefundResult
from omo.checkout.schemas import (
    BasketClaimable,
    BasketCoupon,
    CommitQuote,
    CommitRequest,
    CommitResult,
    QuoteRead,
    QuoteRequest,
)
from omo.commerce import returns_policy
from omo.commerce.channels import Channel
from omo.commerce.returns_policy import Policy, PolicyRead
from omo.commerce.schemas import CODE, OrderRead
from omo.http import AppSettings, DayAfter, FirstDay, PooledRoute, UoW, inline_first, scoped
from omo.shared.schemas import MAX_ID
from omo.shared.secrets import secret_key

router = APIRouter(tags=["checkout"], route_class=PooledRoute)

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
StoreCode = Annotated[str, Path(pattern=CODE)]
Day = Annotated[date, Path(description="the brand's calendar day (OMO_TIME_ZONE), YYYY-MM-DD")]


@router.post(
    "/checkout/quote",
    response_model=QuoteRead,
    summary="Price a basket: tier discount, coupons, points, points to earn",
)
@inline_first  # a till asks before each sale; a read waits for no one (SQLite, local PostgreSQL)
def quote(
    req: QuoteRequest, uow: UoW, settings: AppSettings, caller: Principal = scoped("members:read")
) -> QuoteRead:
    return checkout.quote(uow, req=req, region=settings.default_region,
                          secret=secret_key(settings), unit=settings.price_unit)  # fmt: skip


@router.post(
    "/checkout/best-coupons",
    response_model=QuoteRead,
    summary="Price a basket with the member's coupons that take the most off (推薦最優惠組合)",
)
def best_coupons(
    req: QuoteRequest, uow: UoW, settings: AppSettings, caller: Principal = scoped("members:read")
) -> QuoteRead:
    """A quote, with the codes given and those of the member's usable coupons that lower the
    price most (its `quote` sells them as priced); a notice names those picked."""
    return best.best_quote(uow, req=req, region=settings.default_region,
                           secret=secret_key(settings), unit=settings.price_unit)  # fmt: skip


@router.post(
    "/checkout/coupons",
    response_model=list[BasketCoupon],
    summary="The member's coupons on this basket: which apply and what each takes, which not "
    "and why",
)
def basket_coupons(
    req: QuoteRequest, uow: UoW, settings: AppSettings, caller: Principal = scoped("members:read")
) -> list[BasketCoupon]:
    return best.basket_coupons(uow, req=req, region=settings.default_region,
                               unit=settings.price_unit)  # fmt: skip


@router.post(
    "/checkout/claimable-coupons",
    response_model=list[BasketClaimable],
    summary="The coupons the member may still claim, as each would price on this basket "
    "(領券中心 at checkout)",
)
def basket_claimable(
    req: QuoteRequest, uow: UoW, settings: AppSettings, caller: Principal = scoped("members:read")
) -> list[BasketClaimable]:
    """Claim one with `POST /members/{id}/coupons/claim`, then quote with its code."""
    return best.basket_claimable(uow, req=req, region=settings.default_region,
                                 unit=settings.price_unit)  # fmt: skip


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
        uow, req=req, principal=caller, currency=settings.currency,
        region=settings.default_region, unit=settings.price_unit,
    )  # fmt: skip
    response.status_code = 200 if result.replayed else 201
    return result


def route_of(path: str) -> APIRoute:
    """The POST route at `path` (without the /api/v1 prefix): the till's lane
    (`checkout/lane.py`) answers plain requests beside it with its response field, and the
    metrics label them with it."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path == path and "POST" in (route.methods or ()):
            return route
    raise LookupError(f"{path} is not routed")


@router.post(
    "/checkout/commit-batch",
    response_model=BatchResult,
    summary="Record a till's queued sales, each as /checkout/commit would (one transaction "
    "each, in order)",
)
def commit_batch(
    body: SalesBatch, uow: UoW, settings: AppSettings, caller: Principal = scoped("orders:write")
) -> BatchResult:
    """200 whenever the batch was read: each sale says 201 (recorded), 200 (recorded before)
    or its refusal (`detail`, as the single commit's, `loc` from `body.sales.N`); a sale
    redeeming points needs `points:write`. Send them again as they were to retry: recorded
    ones change nothing."""
    return batch.commit_batch(
        uow, batch=body, principal=caller, currency=settings.currency,
        region=settings.default_region, unit=settings.price_unit,
    )  # fmt: skip


@router.post(
    "/checkout/commit-quote",
    response_model=CommitResult,
    summary="Record a quote's sale at the quote's total, or refuse it (price_changed)",
    responses={200: {"description": "a retry: the sale recorded the first time"}},
)
def commit_quote(
    body: CommitQuote,
    response: Response,
    uow: UoW,
    settings: AppSettings,
    caller: Principal = scoped("orders:write"),
) -> CommitResult:
    result = checkout.commit_quote(
        uow, body=body, principal=caller, currency=settings.currency,
        region=settings.default_region, secret=secret_key(settings), unit=settings.price_unit,
    )  # fmt: skip
    response.status_code = 200 if result.replayed else 201
    return result


@router.post(
    "/orders/{order_id}/refund",
    response_model=RefundResult,
    summary="Refund an order, whole or by lines: points, coupons and stats follow",
)
def refund(
    order_id: Id,
    req: RefundRequest,
    uow: UoW,
    settings: AppSettings,
    caller: Principal = scoped("orders:write"),
) -> RefundResult:
    """A refund the returns policy holds back (`needs_approval`, 403) goes through only for a
    key that also holds `refunds:approve`. A key bound to a store gives refunds at that store,
    for a sale of any store (跨店退貨); its day counts them."""
    approver = caller.name if "refunds:approve" in caller.scopes else None
    return refunds.refund(uow, order_id=order_id, req=req, actor=caller.name, approved_by=approver,
                          unit=settings.price_unit, till=caller)  # fmt: skip


@router.post(
    "/orders/{order_id}/refund-quote",
    response_model=RefundQuote,
    summary="What a refund of these lines would give back, and whether it needs a manager",
)
def refund_quote(
    order_id: Id, req: RefundLines, uow: UoW, settings: AppSettings,
    caller: Principal = scoped("orders:write"),
) -> RefundQuote:  # fmt: skip
    """Changes nothing: the refund is run and rolled back, so every figure (the money, what the
    returns policy keeps back, the points, a level taken back) is what `/refund` would give now.
    Under a policy that claws coupons back or charges spent points, the money depends on what
    the customer keeps and has spent, which the order's `paid_each` cannot say."""
    return refunds.quote(uow, order_id=order_id, req=req, unit=settings.price_unit)


@router.get("/returns/policy", response_model=PolicyRead, summary="Which refunds need a manager")
def get_returns_policy(uow: UoW, caller: Principal = scoped("orders:write")) -> PolicyRead:
    return returns_policy.get_policy(uow)


@router.put(
    "/returns/policy", response_model=PolicyRead, summary="A new returns policy, from now on"
)
def put_returns_policy(
    policy: Policy, uow: UoW, caller: Principal = scoped("loyalty:admin")
) -> PolicyRead:
    return returns_policy.set_policy(uow, policy=policy, actor=caller.name)


@router.get(
    "/orders/lookup",
    response_model=OrderDetail,
    summary="The order a receipt names (channel and number), with what is left to return",
)
def lookup_order(
    uow: UoW,
    channel: Annotated[Channel, Query()],
    external_id: Annotated[str, Query(min_length=1, max_length=128)],
    settings: AppSettings,
    caller: Principal = scoped("members:read"),
) -> OrderDetail:
    return receipts.find_order(uow, channel=channel, external_id=external_id,
                               unit=settings.price_unit)  # fmt: skip


@router.get(
    "/orders/{order_id}",
    response_model=OrderDetail,
    summary="An order: lines with what was returned and what is left, refunds, points, coupons",
)
def get_order(
    order_id: Id, uow: UoW, settings: AppSettings, caller: Principal = scoped("members:read")
) -> OrderDetail:
    return receipts.get_order(uow, order_id=order_id, unit=settings.price_unit)


@router.get(
    "/members/{member_id}/orders",
    response_model=list[OrderRead],
    summary="A member's orders, newest first (with those of members merged into them)",
)
def member_orders(
    member_id: Id,
    uow: UoW,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="the previous page's last order id")
    ] = None,
    caller: Principal = scoped("members:read"),
) -> list[OrderRead]:
    return receipts.member_orders(uow, member_id=member_id, limit=limit, before=before)


@router.get(
    "/stores/days/{day}",
    response_model=StoresDay,
    summary="Every store's day side by side: sales, members' share, refunds, net, points",
)
def stores_day(
    day: Day, uow: UoW, settings: AppSettings, caller: Principal = scoped("kpis:read")
) -> StoresDay:
    """Each open store is listed, with zeros if nothing reached OMO for the day; a key bound to
    a store: 403 (it reads its own store's day)."""
    return dayclose.stores_day(uow, day=day, time_zone=settings.time_zone, principal=caller)


@router.get(
    "/stores/{code}/days/{day}",
    response_model=StoreDay,
    summary="A store's day (日結): sales, discounts, points, coupons and refunds",
)
def store_day(
    code: StoreCode, day: Day, uow: UoW, settings: AppSettings,
    caller: Principal = scoped("orders:write"),
) -> StoreDay:  # fmt: skip
    """The till that writes a store's sales reads its day; a key bound to another store: 403."""
    return dayclose.store_day(uow, store=code, day=day, time_zone=settings.time_zone,
                              principal=caller)  # fmt: skip


@router.post(
    "/stores/{code}/days/{day}/close",
    response_model=DayClosing,
    status_code=201,
    summary="Close a store's day (日結確認): its figures kept as they are now, StoreDayClosed "
    "published",
    responses={200: {"description": "closed before: the first closing, as it was"}},
)
def close_store_day(
    code: StoreCode, day: Day, uow: UoW, settings: AppSettings, response: Response,
    caller: Principal = scoped("orders:write"),
) -> DayClosing:  # fmt: skip
    """Once the day is over (422 `day_not_over` before); a key bound to another store: 403.
    Sales sent later are still recorded: the day then says what changed since its closing."""
    closed = dayclose.close_day(uow, store=code, day=day, time_zone=settings.time_zone,
                                principal=caller)  # fmt: skip
    response.status_code = 200 if closed.replayed else 201
    return closed


@router.post(
    "/stores/{code}/days/{day}/reopen",
    response_model=DayReopened,
    summary="Reopen a closed store day (取消日結): StoreDayReopened published; closing it again "
    "keeps new figures under the next version",
    responses={409: {"description": "the day is not closed (`day_not_closed`)"}},
)
def reopen_store_day(
    code: StoreCode, day: Day, body: ReopenIn, uow: UoW, settings: AppSettings,
    caller: Principal = scoped("days:reopen"),
) -> DayReopened:  # fmt: skip
    """A key bound to another store: 403."""
    return dayclose.reopen_day(uow, store=code, day=day, time_zone=settings.time_zone,
                               principal=caller, reason=body.reason)  # fmt: skip


@router.post(
    "/orders/days/{day}/reconcile",
    response_model=Reconciliation,
    summary="Match a channel's orders of a day (a web shop's or marketplace's export) against "
    "what OMO recorded, at every store and none (changes nothing)",
)
def reconcile_channel_day(
    day: Day, journal: TillJournal, uow: UoW, settings: AppSettings,
    caller: Principal = scoped("orders:write"),
) -> Reconciliation:  # fmt: skip
    """The journal's `channel` names the channel (a web shop: `web`); `missing` orders were
    never recorded: send them again through `/orders` (idempotent on their number). A key bound
    to a store: 403 (it reconciles its store's day)."""
    return dayclose.reconcile_channel(uow, day=day, time_zone=settings.time_zone,
                                      journal=journal, principal=caller)  # fmt: skip


@router.post(
    "/stores/{code}/days/{day}/reconcile",
    response_model=Reconciliation,
    summary="Match the till's receipts for a day against what OMO recorded (changes nothing)",
)
def reconcile_day(
    code: StoreCode, day: Day, journal: TillJournal, uow: UoW, settings: AppSettings,
    caller: Principal = scoped("orders:write"),
) -> Reconciliation:  # fmt: skip
    """Receipts `missing` were never recorded: send them again as they were (a sale is
    idempotent on its number) and reconcile once more."""
    return dayclose.reconcile(uow, store=code, day=day, time_zone=settings.time_zone,
                              journal=journal, principal=caller)  # fmt: skip


@router.get(
    "/refunds/clearing",
    response_model=RefundsClearing,
    summary="Refunds cleared between stores (跨店退貨清算): what each store that sold owes each "
    "store that paid a refund",
)
def refunds_clearing(
    uow: UoW,
    settings: AppSettings,
    from_: FirstDay,
    to: DayAfter,
    caller: Principal = scoped("kpis:read"),
) -> RefundsClearing:
    return refund_clearing.refunds_clearing(
        uow, start=from_, end=to, time_zone=settings.time_zone, principal=caller
    )


@router.get(
    "/points/clearing",
    response_model=Clearing,
    summary="Points cleared between stores (跨店點數清算): issued and used at each, net, value",
)
def points_clearing(
    uow: UoW,
    settings: AppSettings,
    from_: FirstDay,
    to: DayAfter,
    caller: Principal = scoped("kpis:read"),
) -> Clearing:
    return clearing(uow, start=from_, end=to, time_zone=settings.time_zone, principal=caller)
