"""Marketing pages under /ui: segments (the RFM grid, the builder with a live count, saved
segments and their CSV export) and journeys (switch on and off, report)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from omo.analytics import service as analytics
from omo.journeys import report as reports
from omo.journeys import service as journeys
from omo.shared.errors import DomainError
from omo.users.roles import Permission
from omo.web.session import check_csrf, require
from omo.web.views import render

router = APIRouter(prefix="/ui", include_in_schema=False)
Key = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z0-9_\-]+$")]
Name = Annotated[str, Path(min_length=1, max_length=40)]


@router.get("/segments")
def segments_page(request: Request) -> HTMLResponse:
    require(request, Permission.DASHBOARD)
    uow = request.app.state.uow
    return render(
        request, "segments.html", segments=analytics.list_segments(uow),
        grid=analytics.rfm_grid(uow), rule="", error=None,
    )  # fmt: skip


@router.post("/segments/count")
def count_rule(
    request: Request, rule: Annotated[str, Form(max_length=500)], csrf: Annotated[str, Form()] = ""
) -> HTMLResponse:
    """The builder's live count (an HTMX fragment), or why the rule cannot run."""
    require(request, Permission.DASHBOARD)
    check_csrf(request, csrf)
    if not rule.strip():
        return HTMLResponse("")
    try:
        counted = analytics.count_rule(request.app.state.uow, rule=rule)
    except DomainError as exc:
        return render(request, "_count.html", counted=None, error=str(exc))
    return render(request, "_count.html", counted=counted, error=None)


@router.post("/segments")
def save_segment(
    request: Request,
    name: Annotated[str, Form(max_length=40)],
    rule: Annotated[str, Form(max_length=500)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    user = require(request, Permission.JOURNEYS)
    check_csrf(request, csrf)
    uow = request.app.state.uow
    try:
        analytics.save_segment(uow, name=name.strip(), rule=rule, actor=f"ui:{user.username}")
    except DomainError as exc:
        return render(
            request, "segments.html", status=422, segments=analytics.list_segments(uow),
            grid=analytics.rfm_grid(uow), rule=rule, error=str(exc),
        )  # fmt: skip
    return RedirectResponse("/ui/segments", status_code=303)


@router.get("/segments/{name}.csv")
def export_segment(request: Request, name: Name) -> Response:
    """Members of a segment as CSV (ids and figures, no contact details)."""
    require(request, Permission.JOURNEYS)
    lines = analytics.segment_csv(request.app.state.uow, name=name)
    return StreamingResponse(
        lines, media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{name}.csv"'},
    )  # fmt: skip


@router.get("/journeys")
def journeys_page(request: Request) -> HTMLResponse:
    require(request, Permission.JOURNEYS)
    return render(request, "journeys.html", journeys=journeys.list_journeys(request.app.state.uow))


@router.post("/journeys/{key}/toggle")
def toggle_journey(
    request: Request, key: Key, enabled: Annotated[bool, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    user = require(request, Permission.COUPONS)  # marketers and admins act; analysts read
    check_csrf(request, csrf)
    journeys.set_enabled(
        request.app.state.uow, key=key, enabled=enabled, actor=f"ui:{user.username}"
    )
    return RedirectResponse("/ui/journeys", status_code=303)


@router.get("/journeys/{key}")
def journey_page(request: Request, key: Key) -> HTMLResponse:
    require(request, Permission.JOURNEYS)
    uow = request.app.state.uow
    return render(
        request, "journey.html", j=journeys.get(uow, key=key), r=reports.report(uow, key=key)
    )
