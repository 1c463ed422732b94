"""Messaging over HTTP: a member's messages and push subscriptions (/api/v1, with a key), and
the public links inside messages (/t/…, no key: the unguessable token is the credential)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from omo.apikeys.service import Principal
from omo.coupons import service as coupons
from omo.http import PooledRoute, UoW, scoped
from omo.messaging import service as messaging
from omo.messaging.schemas import MessageRead, PushSubscriptionIn
from omo.shared.schemas import MAX_ID

router = APIRouter(tags=["messaging"], route_class=PooledRoute)
public = APIRouter(
    prefix="/t", tags=["message links"], include_in_schema=True, route_class=PooledRoute
)
Token = Annotated[str, Path(min_length=10, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")]
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]
# the smallest transparent GIF
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
_CHANNEL_NAMES = {"email": "e-mail", "sms": "簡訊 SMS", "line": "LINE", "push": "推播 push"}


@router.get("/members/{member_id}/messages", response_model=list[MessageRead])
def member_messages(
    member_id: MemberId, uow: UoW, caller: Principal = scoped("members:read")
) -> list[MessageRead]:
    return messaging.member_messages(uow, member_id=member_id)


@router.post("/members/{member_id}/push-subscriptions", status_code=204)
def add_push_subscription(
    member_id: MemberId, body: PushSubscriptionIn, uow: UoW,
    caller: Principal = scoped("members:write"),
) -> Response:  # fmt: skip
    messaging.add_push_subscription(
        uow, member_id=member_id, endpoint=body.endpoint, p256dh=body.p256dh, auth=body.auth
    )
    return Response(status_code=204)


@public.get("/{token}/open.gif", summary="Open-tracking pixel")
def open_pixel(token: Token, uow: UoW) -> Response:
    messaging.opened(uow, token=token)
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@public.get("/{token}/c/{link}", summary="A tracked link: records the click, then redirects")
def click(token: Token, link: Annotated[int, Path(ge=0, le=100)], uow: UoW) -> Response:
    return RedirectResponse(messaging.clicked(uow, token=token, link=link), status_code=302)


@public.get("/{token}/unsubscribe", response_class=HTMLResponse, summary="Confirm opting out")
def unsubscribe_page(token: Token, uow: UoW) -> HTMLResponse:
    # a GET changes nothing: mail scanners follow links; the button (or a one-click POST from
    # the mail client, RFC 8058) does it
    channel = _CHANNEL_NAMES.get(messaging.channel_of(uow, token=token), "")
    return HTMLResponse(
        f"""<!doctype html><html lang="zh-Hant"><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>取消訂閱</title>
<form method="post"><p>不再收到 {channel} 行銷訊息？ Stop marketing messages on {channel}?</p>
<button type="submit">取消訂閱 Unsubscribe</button></form></html>"""
    )


@public.post("/{token}/unsubscribe", response_class=HTMLResponse, summary="Opt out (one click)")
def unsubscribe(token: Token, uow: UoW) -> HTMLResponse:
    channel = _CHANNEL_NAMES.get(messaging.unsubscribe(uow, token=token), "")
    return HTMLResponse(
        f"""<!doctype html><html lang="zh-Hant"><meta charset="utf-8"><title>已取消訂閱</title>
<p>已取消訂閱 {channel}。 You will get no more marketing messages on {channel}.</p></html>"""
    )


@public.get("/{token}/coupon.png", summary="QR image of the coupon the message carries")
def coupon_qr(token: Token, uow: UoW) -> Response:
    code = messaging.coupon_of(uow, token=token)
    return Response(coupons.qr_png(code), media_type="image/png")
