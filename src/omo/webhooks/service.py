"""Webhook subscriptions: made, changed, read and removed. A new one starts at the newest fact
(it posts what happens from now on); its signing secret is made here and answered once."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.db import UnitOfWork
from omo.messaging import outbox, retention
from omo.shared import clock
from omo.shared.errors import NotFound, ValidationFailed
from omo.webhooks.masking import masked
from omo.webhooks.models import Webhook
from omo.webhooks.schemas import NAME, WebhookIn, WebhookRead


def put_webhook(
    uow: UnitOfWork, *, name: str, data: WebhookIn, actor: str | None
) -> tuple[WebhookRead, bool]:
    """Create or change a subscription; the answer holds the secret when one was made."""
    if not re.fullmatch(NAME, name):
        raise ValidationFailed("a name of 1–40 letters, digits, _ or -", field="name")

    def run(session: Session) -> tuple[WebhookRead, bool]:
        now = clock.now()
        newest = outbox.last_id(session)
        if data.position is not None and data.position > newest:
            raise ValidationFailed(
                f"position {data.position} is past the newest fact ({newest})",
                field="position", ctx={"position": data.position, "newest": newest},
            )  # fmt: skip
        if data.position is not None and data.position < (
            gone := retention.pruned_through(session)
        ):
            raise ValidationFailed(
                f"the facts up to {gone} were removed (older than the outbox keeps them): a "
                f"position from {gone} on",
                field="position", code="facts_removed",
                ctx={"position": data.position, "through": gone},
            )  # fmt: skip
        row = session.scalar(select(Webhook).where(Webhook.name == name).with_for_update())
        created = row is None
        if row is None:  # added once whole: a query before would flush it half made
            row = Webhook(name=name, position=newest, delivered=0, skipped=0, failures=0,
                          created_at=now)  # fmt: skip
        secret = None
        if created or data.rotate_secret:
            secret = row.secret = f"whsec_{secrets.token_urlsafe(32)}"
        if data.position is not None:
            row.position = data.position
        url = data.url
        if not created and url != row.url and url == masked(row.url):
            url = row.url  # the masked URL a GET showed, sent back: the credentials stay
        moved = data.position is not None or row.url != url
        if data.active and (not row.active or moved):
            row.next_at = None  # switched back on, pointed elsewhere or moved: try at once
        if (data.active and not row.active) or row.url != url:  # failing afresh, if at all
            row.failing_since = row.switched_off_at = None
        row.url, row.topics, row.active, row.updated_at = url, data.topics, data.active, now
        if created:
            session.add(row)
        session.flush()
        audit.record(
            session, actor=actor, action="webhook.put", target=f"webhook:{name}",
            detail={"created": created, "url": masked(data.url), "topics": data.topics,
                    "active": data.active, "secret_made": secret is not None,
                    "position": data.position},
        )  # fmt: skip
        read = _read(session, row)
        read.secret = secret
        return read, created

    return uow.run(run)


def outbox_kept(uow: UnitOfWork) -> retention.Kept:
    """The outbox's oldest fact and its last removal past retention (the settings page)."""
    with uow.read() as session:
        return retention.kept(session)


def list_webhooks(uow: UnitOfWork) -> list[WebhookRead]:
    with uow.read() as session:
        return [_read(session, w) for w in session.scalars(select(Webhook).order_by(Webhook.name))]


def standing(session: Session) -> list[tuple[str, int, int, int, int]]:
    """Each subscription's name, facts waiting, failures in a row, facts it never got (past
    the outbox's retention) and 1 if the scheduler switched it off — metrics for operations:
    alert on failures > 0, waiting that grows, skipped or switched off above 0."""
    return [
        (w.name, outbox.count_after(session, after=w.position, topics=w.topics), w.failures,
         w.skipped, int(w.switched_off_at is not None))
        for w in session.scalars(select(Webhook).order_by(Webhook.name))
    ]  # fmt: skip


def get_webhook(uow: UnitOfWork, *, name: str) -> WebhookRead:
    with uow.read() as session:
        return _read(session, by_name(session, name))


def delete_webhook(uow: UnitOfWork, *, name: str, actor: str | None) -> None:
    def run(session: Session) -> None:
        session.delete(by_name(session, name))
        audit.record(session, actor=actor, action="webhook.delete", target=f"webhook:{name}",
                     detail={})  # fmt: skip

    uow.run(run)


def by_name(session: Session, name: str) -> Webhook:
    """The subscription of this name, or a 404."""
    row = session.scalar(select(Webhook).where(Webhook.name == name))
    if row is None:
        raise NotFound(f"no webhook {name!r}", field="name")
    return row


def _read(session: Session, row: Webhook) -> WebhookRead:
    read = WebhookRead.model_validate(
        {
            **{c: getattr(row, c) for c in WebhookRead.model_fields if c not in
               {"secret", "waiting"}},
            "waiting": outbox.count_after(session, after=row.position, topics=row.topics),
            "url": masked(row.url),
        }
    )  # fmt: skip
    return read
