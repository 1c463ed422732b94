"""/api/v1 routes of the web area: the signed member-card link to send a member."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from omo.apikeys.service import Principal
from omo.http import AppSettings, PooledRoute, UoW, scoped
from omo.members import service as members
from omo.shared.schemas import MAX_ID
from omo.shared.secrets import secret_key
from omo.web import card

router = APIRouter(tags=["members"], route_class=PooledRoute)


class CardLink(BaseModel):
    member_id: int
    url: str


@router.get(
    "/members/{member_id}/card-link", response_model=CardLink,
    summary="A signed link to the member's card page (to send by LINE, e-mail, SMS)",
)  # fmt: skip
def card_link(
    member_id: Annotated[int, Path(ge=1, le=MAX_ID)], uow: UoW, settings: AppSettings,
    caller: Principal = scoped("members:read"),
) -> CardLink:  # fmt: skip
    with uow.read() as session:
        mid = members.current_member(session, member_id).id
    token = card.card_token(secret_key(settings), mid)
    return CardLink(member_id=mid, url=f"{settings.public_url.rstrip('/')}/card/{token}")
