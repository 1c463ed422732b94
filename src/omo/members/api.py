"""/api/v1/members: enrol, look up, and the single customer view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from omo.apikeys.service import Principal
from omo.customer_view import service as customer_view
from omo.customer_view.schemas import CustomerView
from omo.http import AppSettings, PooledRoute, UoW, scoped
from omo.ingest import service as ingest
from omo.ingest.schemas import EnrolResult
from omo.members.identifiers import InvalidIdentifier, normalise
from omo.members.schemas import MemberSummary, MemberUpsert
from omo.shared.errors import ValidationFailed
from omo.shared.schemas import MAX_ID

router = APIRouter(prefix="/members", tags=["members"], route_class=PooledRoute)

MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("", response_model=EnrolResult, summary="Enrol a member, or update by identifiers")
def enrol(
    data: MemberUpsert,
    response: Response,
    uow: UoW,
    settings: AppSettings,
    caller: Principal = scoped("members:write"),
) -> EnrolResult:
    result = ingest.enrol_member(uow, data=data, principal=caller, region=settings.default_region)
    response.status_code = 201 if result.created else 200
    return result


@router.get("/lookup", response_model=MemberSummary, summary="Find a member by one identifier")
def lookup(
    uow: UoW,
    settings: AppSettings,
    phone: Annotated[str | None, Query(max_length=64)] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
    card: Annotated[str | None, Query(max_length=64)] = None,
    line_id: Annotated[str | None, Query(max_length=64)] = None,
    caller: Principal = scoped("members:read"),
) -> MemberSummary:
    given = {
        k: v
        for k, v in {"phone": phone, "email": email, "card": card, "line_id": line_id}.items()
        if v
    }
    if len(given) != 1:
        raise ValidationFailed("give exactly one of phone, email, card, line_id", field="query")
    ((kind, value),) = given.items()
    try:
        identifier = normalise(kind, value, region=settings.default_region)
    except InvalidIdentifier as exc:
        raise ValidationFailed(str(exc), field=f"query.{kind}") from None
    return customer_view.lookup(uow, identifier=identifier)


@router.get("/{member_id}", response_model=CustomerView, summary="The single customer view")
def get_member(
    member_id: MemberId,
    uow: UoW,
    timeline_limit: Annotated[int, Query(ge=1, le=500)] = 50,
    caller: Principal = scoped("members:read"),
) -> CustomerView:
    return customer_view.customer_view(uow, member_id=member_id, timeline_limit=timeline_limit)
