"""Admin actions under /ui: merge two members and undo a merge (from the customer view), the
programmes — tier levels, points rules, coupon templates, rewards — edited as validated JSON,
and a reward marked as sent with its tracking number."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from omo.commerce import returns_policy
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.identity import service as identity
from omo.points import service as points
from omo.points.rules import PointsRules
from omo.rewards import fulfilment
from omo.rewards import service as rewards
from omo.rewards.schemas import RedemptionFulfil, RewardIn
from omo.shared.errors import DomainError
from omo.shared.schemas import MAX_ID
from omo.tiers import service as tiers
from omo.tiers.policy import TierProgramme
from omo.users.roles import Permission
from omo.web import pages
from omo.web.session import check_csrf, require
from omo.web.views import render

router = APIRouter(prefix="/ui", include_in_schema=False)
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.post("/members/{member_id}/merge")
def merge(
    request: Request, member_id: MemberId,
    other: Annotated[int, Form(ge=1, le=MAX_ID)], note: Annotated[str, Form(max_length=300)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """Fold member `other` into this one (staff decided they are one person)."""
    user = require(request, Permission.SETTINGS)
    check_csrf(request, csrf)
    try:
        identity.merge_use_case(
            request.app.state.uow, survivor_id=member_id, absorbed_id=other,
            note=note or None, actor=f"ui:{user.username}",
        )  # fmt: skip
    except DomainError as exc:
        return render(request, "forbidden.html", status=422, reason=str(exc),
                      back=f"/ui/members/{member_id}")  # fmt: skip
    return RedirectResponse(f"/ui/members/{member_id}", status_code=303)


@router.post("/merges/{merge_id}/undo")
def undo(
    request: Request,
    merge_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    user = require(request, Permission.SETTINGS)
    check_csrf(request, csrf)
    try:
        done = identity.undo_use_case(
            request.app.state.uow, merge_id=merge_id, actor=f"ui:{user.username}"
        )
    except DomainError as exc:
        return render(request, "forbidden.html", status=422, reason=str(exc))
    return RedirectResponse(f"/ui/members/{done.survivor_id}", status_code=303)


@router.post("/rewards/sent")
def reward_sent(
    request: Request,
    redemption: Annotated[str, Form(min_length=1, max_length=120)],
    reference: Annotated[str, Form(max_length=120)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """A redeemed reward went out by post or courier; `reference` is its tracking number."""
    user = require(request, Permission.SETTINGS)
    check_csrf(request, csrf)
    uow = request.app.state.uow
    try:
        fulfilment.fulfil(
            uow, idempotency_key=redemption, actor=f"ui:{user.username}",
            req=RedemptionFulfil(reference=reference.strip() or None),
        )  # fmt: skip
    except DomainError as exc:
        page = pages.settings(uow, app=request.app.state.settings)
        return render(request, "settings.html", status=422, page=page, error=f"send: {exc}",
                      drafts=pages.editor_values(page), code="")  # fmt: skip
    return RedirectResponse("/ui/settings", status_code=303)


_MODELS: dict[str, type[BaseModel]] = {
    "tiers": TierProgramme, "points": PointsRules, "coupon": CouponTemplate, "reward": RewardIn,
    "returns": returns_policy.Policy,
}  # fmt: skip


@router.post("/settings/{kind}")
def save_settings(
    request: Request,
    kind: Annotated[str, Path(pattern="^(tiers|points|returns|coupon|reward)$")],
    body: Annotated[str, Form(max_length=20_000)],
    code: Annotated[str, Form(max_length=40)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """A new version of a programme, a coupon template or a reward, from its JSON; a mistake
    shows the field and reason and changes nothing."""
    user = require(request, Permission.SETTINGS)
    check_csrf(request, csrf)
    uow, actor = request.app.state.uow, f"ui:{user.username}"
    unit = request.app.state.settings.price_unit
    try:
        value: Any = _MODELS[kind].model_validate(json.loads(body))
        if kind == "tiers":
            tiers.set_programme(uow, programme=value, actor=actor)
        elif kind == "points":
            points.set_programme(uow, rules=value, actor=actor)
        elif kind == "returns":
            returns_policy.set_policy(uow, policy=value, actor=actor)
        elif not code.strip():
            raise DomainError("give it a code")
        elif kind == "coupon":
            coupons.put_template(uow, code=code.strip(), template=value, actor=actor, unit=unit)
        else:
            rewards.put_reward(uow, code=code.strip(), data=value, actor=actor, unit=unit)
    except json.JSONDecodeError as exc:
        error = f"JSON: {exc}"
    except ValidationError as exc:
        first = exc.errors()[0]
        error = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    except DomainError as exc:
        error = str(exc)
    else:
        return RedirectResponse("/ui/settings", status_code=303)
    page = pages.settings(uow, app=request.app.state.settings)
    return render(
        request, "settings.html", status=422, page=page, error=f"{kind}: {error}",
        drafts={**pages.editor_values(page), kind: body}, code=code,
    )  # fmt: skip
