"""/api/v1 webhooks: subscriptions that post the outbox's facts to an integrator's URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from omo.apikeys.service import Principal
from omo.http import PooledRoute, UoW, scoped
from omo.webhooks import service as webhooks
from omo.webhooks.schemas import NAME, WebhookIn, WebhookRead

router = APIRouter(tags=["webhooks"], route_class=PooledRoute)
Name = Annotated[str, Path(pattern=NAME)]


@router.put(
    "/webhooks/{name}",
    response_model=WebhookRead,
    summary="Create or change a subscription (created: from the newest fact on; the secret "
    "answered once)",
)
def put_webhook(
    name: Name, body: WebhookIn, response: Response, uow: UoW,
    caller: Principal = scoped("webhooks:admin"),
) -> WebhookRead:  # fmt: skip
    read, created = webhooks.put_webhook(uow, name=name, data=body, actor=caller.name)
    response.status_code = 201 if created else 200
    return read


@router.get("/webhooks", response_model=list[WebhookRead], summary="The subscriptions")
def list_webhooks(uow: UoW, caller: Principal = scoped("webhooks:admin")) -> list[WebhookRead]:
    return webhooks.list_webhooks(uow)


@router.get("/webhooks/{name}", response_model=WebhookRead, summary="One subscription")
def get_webhook(name: Name, uow: UoW, caller: Principal = scoped("webhooks:admin")) -> WebhookRead:
    return webhooks.get_webhook(uow, name=name)


@router.delete("/webhooks/{name}", status_code=204, summary="Remove a subscription")
def delete_webhook(name: Name, uow: UoW, caller: Principal = scoped("webhooks:admin")) -> Response:
    webhooks.delete_webhook(uow, name=name, actor=caller.name)
    return Response(status_code=204)
