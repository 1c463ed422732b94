"""/api/v1 analytics: refresh runs, member scores, segments (built-in and saved), the at-risk
list, basket rules and recommendations (all computed by `omo refresh`; these endpoints only
read, save or delete rules), and the period figures read live: KPIs and the funnel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from omo.analytics import recommend, service
from omo.analytics.attribution import attribution as period_attribution
from omo.analytics.discounts import discount_cost
from omo.analytics.funnel import funnel as period_funnel
from omo.analytics.kpis import kpis as period_kpis
from omo.analytics.schemas import (
    Attribution,
    BasketRuleRead,
    CohortRead,
    DiscountReport,
    Funnel,
    Kpis,
    NewProductRead,
    Recommendation,
    RuleCheck,
    RuleCount,
    RunRead,
    ScorePage,
    ScoreRead,
    SegmentCreate,
    SegmentRead,
)
from omo.apikeys.service import Principal
from omo.http import PooledRoute, UoW, scoped
from omo.shared.schemas import MAX_ID, Moment

router = APIRouter(tags=["analytics"], route_class=PooledRoute)

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Name = Annotated[str, Path(min_length=1, max_length=40)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
# the period of a live report: [from, to), default the 30 days to now (analytics/periods.py)
From = Annotated[Moment | None, Query(alias="from", description="start (inclusive)")]
To = Annotated[Moment | None, Query(description="end (exclusive); default now")]


@router.get("/analytics/runs", response_model=list[RunRead], summary="Recent refresh runs")
def runs(uow: UoW, limit: Limit = 20, caller: Principal = scoped("kpis:read")) -> list[RunRead]:
    return service.list_runs(uow, limit=limit)


@router.get("/analytics/runs/{run_id}", response_model=RunRead, summary="One refresh run")
def run(run_id: Id, uow: UoW, caller: Principal = scoped("kpis:read")) -> RunRead:
    return service.get_run(uow, run_id)


@router.get(
    "/members/{member_id}/scores",
    response_model=ScoreRead,
    summary="A member's RFM scores, segment, lifecycle, tags and CLV from the last refresh",
)
def scores(member_id: Id, uow: UoW, caller: Principal = scoped("members:read")) -> ScoreRead:
    return service.member_scores(uow, member_id=member_id)


@router.get("/segments", response_model=list[SegmentRead], summary="Segments, rules and counts")
def segments(uow: UoW, caller: Principal = scoped("kpis:read")) -> list[SegmentRead]:
    return service.list_segments(uow)


@router.post(
    "/segments", response_model=SegmentRead, status_code=201, summary="Save a dynamic segment"
)
def save_segment(
    body: SegmentCreate, uow: UoW, caller: Principal = scoped("loyalty:admin")
) -> SegmentRead:
    return service.save_segment(uow, name=body.name, rule=body.rule, actor=caller.name)


@router.delete("/segments/{name}", status_code=204, summary="Delete a saved segment")
def delete_segment(name: Name, uow: UoW, caller: Principal = scoped("loyalty:admin")) -> Response:
    service.delete_segment(uow, name=name)
    return Response(status_code=204)


@router.post(
    "/segments/count", response_model=RuleCount, summary="Members a rule selects now (live count)"
)
def count(body: RuleCheck, uow: UoW, caller: Principal = scoped("kpis:read")) -> RuleCount:
    return service.count_rule(uow, rule=body.rule)


@router.get("/segments/{name}/members", response_model=ScorePage, summary="A segment's members")
def segment_members(
    name: Name, uow: UoW, limit: Limit = 50, offset: Offset = 0,
    caller: Principal = scoped("kpis:read"),
) -> ScorePage:  # fmt: skip
    return service.segment_members(uow, name=name, limit=limit, offset=offset)


@router.get(
    "/segments/{name}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
    summary="Every member of a segment as CSV (ids and figures, no personal data)",
)
def export(name: Name, uow: UoW, caller: Principal = scoped("kpis:read")) -> StreamingResponse:
    return StreamingResponse(
        service.segment_csv(uow, name=name),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{name}.csv"'},
    )


@router.get(
    "/analytics/at-risk", response_model=ScorePage, summary="Valuable members slipping away"
)
def at_risk(
    uow: UoW, limit: Limit = 50, offset: Offset = 0, caller: Principal = scoped("kpis:read")
) -> ScorePage:
    return service.at_risk(uow, limit=limit, offset=offset)


@router.get(
    "/analytics/kpis",
    response_model=Kpis,
    summary="Headline KPIs of a period (default: the last 30 days)",
)
def kpis(
    uow: UoW,
    from_: From = None,
    to: To = None,
    caller: Principal = scoped("kpis:read"),
) -> Kpis:
    return period_kpis(uow, since=from_, until=to)


@router.get(
    "/analytics/funnel",
    response_model=Funnel,
    summary="Funnel per channel, cart abandonment, online↔store (default: the last 30 days)",
)
def funnel(
    uow: UoW,
    from_: From = None,
    to: To = None,
    caller: Principal = scoped("kpis:read"),
) -> Funnel:
    return period_funnel(uow, since=from_, until=to)


@router.get(
    "/analytics/discounts",
    response_model=DiscountReport,
    summary="Discount cost: give-away ratio, margins, a discount range per tier (default: 30 d)",
)
def discounts(
    uow: UoW,
    from_: From = None,
    to: To = None,
    target_margin: Annotated[float, Query(description="margin to keep, 0 … <1")] = 0.3,
    caller: Principal = scoped("kpis:read"),
) -> DiscountReport:
    return discount_cost(uow, since=from_, until=to, target_margin=target_margin)


@router.get(
    "/analytics/attribution",
    response_model=Attribution,
    summary="Sales by first and last ad touch, online-to-store credit (default: 30 days)",
)
def attribution(
    uow: UoW,
    from_: From = None,
    to: To = None,
    lookback_days: Annotated[int, Query(description="a click counts this many days")] = 30,
    caller: Principal = scoped("kpis:read"),
) -> Attribution:
    return period_attribution(uow, since=from_, until=to, lookback_days=lookback_days)


@router.get(
    "/analytics/cohorts",
    response_model=list[CohortRead],
    summary="Monthly acquisition cohorts × retention (from the last refresh)",
)
def cohorts(
    uow: UoW,
    first: Annotated[
        str | None, Query(max_length=7, description="from this cohort, YYYY-MM")
    ] = None,
    caller: Principal = scoped("kpis:read"),
) -> list[CohortRead]:
    return service.cohorts(uow, first=first)


@router.get(
    "/analytics/basket",
    response_model=list[BasketRuleRead],
    summary="What sells with what: rules X → Y and {A, B} → C by lift (from the last refresh)",
)
def basket(
    uow: UoW,
    level: Annotated[str, Query(description="sku or category")] = "category",
    item: Annotated[
        str | None, Query(max_length=64, description="rules with this item among the antecedents")
    ] = None,
    min_lift: Annotated[float, Query(ge=0, le=1e6)] = 0.0,
    antecedent_items: Annotated[
        int | None, Query(ge=1, le=2, description="1: X → Y rules only; 2: {A, B} → C only")
    ] = None,
    limit: Limit = 50,
    caller: Principal = scoped("kpis:read"),
) -> list[BasketRuleRead]:
    return recommend.basket_rules(
        uow, level=level, item=item, min_lift=min_lift, limit=limit,
        antecedent_items=antecedent_items,
    )  # fmt: skip


@router.get(
    "/analytics/new-products",
    response_model=list[NewProductRead],
    summary="New products' penetration and repeat rate (from the last refresh)",
)
def new_products(
    uow: UoW, limit: Limit = 50, caller: Principal = scoped("kpis:read")
) -> list[NewProductRead]:
    return recommend.new_products(uow, limit=limit)


@router.get(
    "/members/{member_id}/recommendations",
    response_model=list[Recommendation],
    summary="Bought X → recommend Y: products this member's purchases lead to",
)
def recommendations(
    member_id: Id,
    uow: UoW,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
    caller: Principal = scoped("kpis:read"),
) -> list[Recommendation]:
    return recommend.recommendations(uow, member_id=member_id, limit=limit)
