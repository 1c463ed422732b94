"""Posting the outbox's facts to each subscription (a pass of `omo jobs run`): in the order they
were published, one post per fact, at least once. A subscription's position moves past a fact
only once its URL answered 2xx; a failure stops that subscription where it is and retries it
after a back-off (1 min doubling to 6 h), so a receiver that was down gets every fact, in order,
when it is back. A subscription failing for `switch_off_after` (OMO_WEBHOOK_SWITCH_OFF_AFTER_H,
72 h) and at least SWITCH_OFF_ATTEMPTS times in a row is switched off: its facts wait for it
where it stopped, an admin is told (the settings page, the audit log, `/metrics` and a
`WebhookSwitchedOff` fact) and switches it back on. The HTTP calls hold no transaction open: a
subscription is leased by a conditional UPDATE first, so two passes side by side never post for
the same one at once."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from omo import __version__
from omo.audit import service as audit
from omo.db import UnitOfWork
from omo.messaging import outbox
from omo.messaging.models import OutboxMessage
from omo.messaging.policy import backoff
from omo.shared import clock
from omo.webhooks import service as webhooks
from omo.webhooks import signing
from omo.webhooks.models import Webhook
from omo.webhooks.schemas import FactRead, PingRead, WebhookReport

LEASE = timedelta(minutes=5)  # a pass that died holding one: taken again after this
BATCH = 100  # facts read at a time for one subscription
TIMEOUT_S = 10.0
# a subscription is switched off only after this many failed attempts in a row as well as the
# hours: a scheduler that did not run for days does not switch one off at its first failure
SWITCH_OFF_ATTEMPTS = 10

# (url, body, headers) -> the HTTP status; raises httpx.HTTPError when no answer came
Post = Callable[[str, bytes, dict[str, str]], int]


@dataclass(frozen=True)
class _Target:
    id: int
    url: str
    secret: str
    topics: frozenset[str]
    position: int


def deliver_due(
    uow: UnitOfWork, *, settle_s: float, switch_off_after: timedelta | None = None,
    post: Post | None = None, batch: int = BATCH,
) -> WebhookReport:  # fmt: skip
    """Post what each active subscription has not yet been answered for; one failing for
    `switch_off_after` (None: never) is switched off."""
    due = uow.run(lambda s: _due(s, clock.now()))
    delivered = failed = 0
    switched_off: list[str] = []
    if not due:
        return WebhookReport(delivered=0, failed=0)
    client = None
    if post is None:  # made only when there is something to post (its TLS setup costs ~20 ms)
        client = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
        post = _poster(client)
    try:
        for hook_id in due:
            sent, error, off = _deliver(uow, hook_id, post, settle_s=settle_s, batch=batch,
                                        switch_off_after=switch_off_after)  # fmt: skip
            delivered, failed = delivered + sent, failed + (error is not None)
            switched_off += [off] if off is not None else []
    finally:
        if client is not None:
            client.close()
    return WebhookReport(delivered=delivered, failed=failed, switched_off=switched_off)


def _deliver(
    uow: UnitOfWork, hook_id: int, post: Post, *, settle_s: float, batch: int,
    switch_off_after: timedelta | None,
) -> tuple[int, str | None, str | None]:  # fmt: skip
    """The facts posted, the failure that stopped it, its name if it was switched off."""
    sent = 0
    while True:
        now = clock.now()
        target = uow.run(partial(_lease, hook_id=hook_id, now=now))
        if target is None:  # another pass holds it, or it was removed or switched off
            return sent, None, None
        with uow.read() as session:
            read = outbox.unread(
                session, after=target.position, now=now, settle_s=settle_s, limit=batch
            )
            facts = [FactRead.model_validate(f) for f in read]
        # stop posting well before the lease ends, so no other pass takes it while this posts
        until = now + LEASE - timedelta(seconds=2 * TIMEOUT_S)
        position, posted, error = _post_all(target, facts, post, until=until)
        sent += posted
        settle = partial(_settle, hook_id=hook_id, started=target.position, position=position,
                         posted=posted, error=error, switch_off_after=switch_off_after)  # fmt: skip
        off = uow.run(settle)
        if error is not None or len(facts) < batch:
            return sent, error, off


def _post_all(
    target: _Target, facts: list[FactRead], post: Post, *, until: datetime
) -> tuple[int, int, str | None]:
    """Post the facts in order until one fails or the time is up; the position reached, the
    facts posted, the failure."""
    position, posted = target.position, 0
    for fact in facts:
        if clock.now() >= until:
            break
        if not target.topics or fact.topic in target.topics:
            error = _post_one(target, fact, post)[1]
            if error is not None:
                return position, posted, error
            posted += 1
        position = fact.id
    return position, posted, None


def _post_one(target: _Target, fact: FactRead, post: Post) -> tuple[int | None, str | None]:
    """Post one fact, signed: the HTTP status (None: no answer) and the failure, if any."""
    body = fact.model_dump_json().encode()  # the shape GET /facts answers each fact in
    headers = {
        "Content-Type": "application/json", "User-Agent": f"omo-webhooks/{__version__}",
        "OMO-Event-Topic": fact.topic, "OMO-Event-Key": fact.key,
        signing.HEADER: signing.sign(target.secret, int(clock.now().timestamp()), body),
    }  # fmt: skip
    try:
        status = post(target.url, body, headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    return status, None if 200 <= status < 300 else f"HTTP {status}"


def ping(uow: UnitOfWork, *, name: str) -> PingRead:
    """Post a signed `Ping` to the subscription's URL now, outside its order (its position and
    failures stay as they are): a receiver being set up checks its address and its signature
    check."""
    with uow.read() as session:
        row = webhooks.by_name(session, name)
        target = _Target(row.id, row.url, row.secret, frozenset(), row.position)
    now = clock.now()
    fact = FactRead(id=0, topic="Ping", key=f"ping:{secrets.token_hex(8)}", created_at=now,
                    payload={"webhook": name})  # fmt: skip
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
        status, error = _post_one(target, fact, _poster(client))
    seconds = (clock.now() - now).total_seconds()
    return PingRead(ok=error is None, status=status, error=error, key=fact.key, seconds=seconds)


def _poster(client: httpx.Client) -> Post:
    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        return client.post(url, content=body, headers=headers).status_code

    return post


def _due(session: Session, now: datetime) -> list[int]:
    return list(
        session.scalars(
            select(Webhook.id)
            .where(
                Webhook.active,
                or_(Webhook.next_at.is_(None), Webhook.next_at <= now),
                or_(Webhook.leased_until.is_(None), Webhook.leased_until <= now),
                Webhook.position < select(func.max(OutboxMessage.id)).scalar_subquery(),
            )
            .order_by(Webhook.id)
        )
    )


def _lease(session: Session, *, hook_id: int, now: datetime) -> _Target | None:
    """Take the subscription for this pass (one conditional UPDATE: a pass side by side finds
    it taken), or None."""
    taken = session.execute(
        update(Webhook)
        .where(
            Webhook.id == hook_id, Webhook.active,
            or_(Webhook.leased_until.is_(None), Webhook.leased_until <= now),
            or_(Webhook.next_at.is_(None), Webhook.next_at <= now),
        )
        .values(leased_until=now + LEASE)
    )  # fmt: skip
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    row = session.get_one(Webhook, hook_id)
    return _Target(row.id, row.url, row.secret, frozenset(row.topics), row.position)


def _settle(
    session: Session, *, hook_id: int, started: int, position: int, posted: int,
    error: str | None, switch_off_after: timedelta | None,
) -> str | None:  # fmt: skip
    """Where the post left the subscription; its name if it is switched off now."""
    now = clock.now()
    row = session.get(Webhook, hook_id, with_for_update=True)
    if row is None:  # removed while posting
        return None
    if row.position == started:  # else moved (PUT position) while posting: where it was put
        row.position = position
    row.delivered += posted
    row.leased_until = None
    if posted:
        row.last_delivered_at = now
    if error is None:
        row.failures, row.next_at, row.last_error, row.failing_since = 0, None, None, None
        return None
    row.failures += 1
    row.next_at, row.last_error = now + backoff(row.failures), error
    row.failing_since = row.failing_since or now
    if (
        switch_off_after is None
        or not row.active  # switched off by hand while it posted: left as it was put
        or row.failures < SWITCH_OFF_ATTEMPTS
        or now - clock.as_utc(row.failing_since) < switch_off_after
    ):
        return None
    row.active, row.switched_off_at, row.next_at = False, now, None
    detail = {"failing_since": clock.as_utc(row.failing_since).isoformat(),
              "failures": row.failures, "last_error": error, "position": row.position}  # fmt: skip
    audit.record(session, actor="omo", action="webhook.switched_off",
                 target=f"webhook:{row.name}", detail=detail)  # fmt: skip
    outbox.publish(session, topic="WebhookSwitchedOff", now=now, new_key=True,
                   key=f"webhook-off:{row.id}:{now.isoformat()}",
                   payload={"webhook": row.name, **detail})  # fmt: skip
    return row.name
