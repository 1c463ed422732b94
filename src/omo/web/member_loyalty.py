"""Admin actions on a member's loyalty, from the customer view: adjust points (a correction or a
goodwill gesture, with the reason the member will see in their history) and give a level through
a day — through the same use cases as `POST /members/{id}/points/adjust` and
`PUT /members/{id}/tier`. Each form carries a key made when the page was shown, so a double
press adjusts once; a refusal shows its reason and changes nothing."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from omo.points import service as points
from omo.points.schemas import PointsChange
from omo.shared.errors import DomainError
from omo.shared.schemas import MAX_ID
from omo.tiers import grants
from omo.users.roles import Permission
from omo.web.session import check_csrf, require
from omo.web.views import render

router = APIRouter(prefix="/ui", include_in_schema=False)
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("/members/{member_id}/points")
def adjust_points(
    request: Request, member_id: MemberId,
    points_change: Annotated[str, Form(alias="points", max_length=12)] = "",
    reason: Annotated[str, Form(max_length=300)] = "",
    adjust_id: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    user = require(request, Permission.SETTINGS)
    check_csrf(request, csrf)
    if not adjust_id:
        return _refused(request, member_id, "reload the member's page and adjust from there")
    try:
        change = PointsChange(
            points=int(points_change.strip()), idempotency_key=f"ui:{adjust_id}",
            reason=reason.strip() or None,
        )  # fmt: skip
        points.adjust(request.app.state.uow, member_id=member_id, change=change,
                      actor=f"ui:{user.username}")  # fmt: skip
    except ValidationError as exc:
        return _refused(request, member_id, _first(exc))
    except ValueError:  # int() of what is not a whole number
        return _refused(request, member_id, "points: a whole number, + to give or − to take")
    except DomainError as exc:
        return _refused(request, member_id, exc)
    return RedirectResponse(f"/ui/members/{member_id}", status_code=303)


@router.post("/members/{member_id}/tier")
def give_level(
    request: Request, member_id: MemberId,
    level: Annotated[str, Form(max_length=32)] = "",
    until: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    user = require(request, Permission.SETTINGS)
    check_csrf(request, csrf)
    try:
        req = grants.TierGrant(level=level, until=date.fromisoformat(until), reason=reason.strip())
        grants.grant(request.app.state.uow, member_id=member_id, req=req,
                     actor=f"ui:{user.username}")  # fmt: skip
    except ValidationError as exc:
        return _refused(request, member_id, _first(exc))
    except ValueError:
        return _refused(request, member_id, "until: a day, as the date field gives it")
    except DomainError as exc:
        return _refused(request, member_id, exc)
    return RedirectResponse(f"/ui/members/{member_id}", status_code=303)


def _first(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"


def _refused(request: Request, member_id: int, reason: DomainError | str) -> Response:
    """Nothing was changed: why, and the way back to the member."""
    return render(request, "forbidden.html", status=422, reason=reason,
                  back=f"/ui/members/{member_id}")  # fmt: skip
