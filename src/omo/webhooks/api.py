"""/api/v1 webhooks: subscriptions that post the outbox's facts to an integrator's URL, and the
same facts read page by page by a system that polls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from omo.apikeys.service import Principal
from omo.http import AppSettings, PooledRoute, UoW, scoped
from omo.shared.schemas import MAX_ID
from omo.webhooks import delivery, feed
from omo.webhooks import service as webhooks
from omo.webhooks.schemas import NAME, FactsPage, PingRead, WebhookIn, WebhookRead

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


@router.post(
    "/webhooks/{name}/ping",
    response_model=PingRead,
    summary="Post a signed Ping to the subscription's URL now (its place in the facts stays)",
)
def ping_webhook(name: Name, uow: UoW, caller: Principal = scoped("webhooks:admin")) -> PingRead:
    return delivery.ping(uow, name=name)


@router.delete("/webhooks/{name}", status_code=204, summary="Remove a subscription")
def delete_webhook(name: Name, uow: UoW, caller: Principal = scoped("webhooks:admin")) -> Response:
    webhooks.delete_webhook(uow, name=name, actor=caller.name)
    return Response(status_code=204)


@router.get(
    "/facts",
    response_model=FactsPage,
    summary="The outbox's facts past a position, oldest first (for a system that polls rather "
    "than take a webhook)",
    responses={
        410: {
            "description": "facts after `after` were removed past OMO_OUTBOX_RETENTION_DAYS "
            "(`facts_removed`; ctx says through which position)"
        }
    },
)
def list_facts(
    uow: UoW,
    settings: AppSettings,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="next_after of the last page")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    topic: Annotated[
        list[str] | None, Query(max_length=20, description="only these topics (repeat)")
    ] = None,
    caller: Principal = scoped("facts:read"),
) -> FactsPage:
    return feed.facts_after(
        uow, after=after, limit=limit, topics=topic or [], settle_s=settings.outbox_settle_s
    )
