"""Analysis and review pages under /ui: the funnel, the cohorts, the identity review queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from omo.analytics import service as analytics
from omo.analytics.funnel import funnel
from omo.checkout.dayclose.clearing import as_csv as clearing_csv
from omo.checkout.dayclose.refund_clearing import as_csv as refunds_csv
from omo.identity import reviews
from omo.points import movements
from omo.shared.schemas import MAX_ID
from omo.users.roles import Permission
from omo.web import pages
from omo.web.session import check_csrf, require
from omo.web.views import render

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/funnel")
def funnel_page(request: Request) -> HTMLResponse:
    require(request, Permission.DASHBOARD)
    uow = request.app.state.uow
    return render(
        request, "funnel.html", f=funnel(uow, since=None, until=None),
        cohorts=analytics.cohorts(uow, first=None)[-12:],
    )  # fmt: skip


DayText = Annotated[str | None, Query(max_length=10)]


@router.get("/points")
def points_page(
    request: Request, start: DayText = None, end: DayText = None,
    by: Annotated[str | None, Query(max_length=5)] = None,
) -> HTMLResponse:  # fmt: skip
    """The points ledger rolled forward (點數負債變動表), with its CSV."""
    require(request, Permission.DASHBOARD)
    page = pages.points_ledger(request.app.state.uow, zone=request.app.state.settings.time_zone,
                               start=start, end=end, by=by)  # fmt: skip
    return render(request, "points.html", status=422 if page.error else 200, p=page)


@router.get("/points.csv")
def points_csv(
    request: Request, start: DayText = None, end: DayText = None,
    by: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:  # fmt: skip
    require(request, Permission.DASHBOARD)
    page = pages.points_ledger(request.app.state.uow, zone=request.app.state.settings.time_zone,
                               start=start, end=end, by=by, clear=False, refunds=False)  # fmt: skip
    if page.movements is None:
        return render(request, "points.html", status=422, p=page)
    return _csv(movements.as_csv(page.movements), f"points-{_span(page)}-{page.by}.csv")


@router.get("/points-clearing.csv")
def points_clearing_csv(
    request: Request, start: DayText = None, end: DayText = None
) -> Response:  # fmt: skip
    require(request, Permission.DASHBOARD)
    page = pages.points_ledger(request.app.state.uow, zone=request.app.state.settings.time_zone,
                               start=start, end=end, by=None, roll=False,
                               refunds=False)  # fmt: skip
    if page.clearing is None:
        return render(request, "points.html", status=422, p=page)
    return _csv(clearing_csv(page.clearing), f"points-clearing-{_span(page)}.csv")


@router.get("/refunds-clearing.csv")
def refunds_clearing_csv(
    request: Request, start: DayText = None, end: DayText = None
) -> Response:  # fmt: skip
    """跨店退貨清算 for a spreadsheet: what each selling store owes each refunding one."""
    require(request, Permission.DASHBOARD)
    page = pages.points_ledger(request.app.state.uow, zone=request.app.state.settings.time_zone,
                               start=start, end=end, by=None, roll=False, clear=False)  # fmt: skip
    if page.refunds is None:
        return render(request, "points.html", status=422, p=page)
    return _csv(refunds_csv(page.refunds), f"refunds-clearing-{_span(page)}.csv")


def _span(page: pages.PointsLedgerPage) -> str:
    return f"{page.start.isoformat()}-{page.end.isoformat()}"


def _csv(text: str, name: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get("/reviews")
def reviews_page(request: Request) -> HTMLResponse:
    require(request, Permission.SETTINGS)  # merging people is an admin's decision
    total, items = reviews.list_reviews(request.app.state.uow, status="pending", limit=50, offset=0)
    return render(request, "reviews.html", total=total, items=items)


@router.post("/reviews/{review_id}")
def decide(
    request: Request,
    review_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    decision: Annotated[str, Form(pattern="^(accept|reject)$")],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    user = require(request, Permission.SETTINGS)
    check_csrf(request, csrf)
    uow, actor = request.app.state.uow, f"ui:{user.username}"
    if decision == "accept":
        reviews.accept(uow, review_id=review_id, note="accepted in the review queue", actor=actor)
    else:
        reviews.reject(uow, review_id=review_id, actor=actor)
    return RedirectResponse("/ui/reviews", status_code=303)
