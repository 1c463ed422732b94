"""Messages: queued inside the cause's transaction with consent, caps and quiet hours applied;
delivered after commit by `deliver_due` with retries, back-off and a dead-letter state;
opens, clicks and one-click unsubscribes tracked by the message's token."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from omo.db import UnitOfWork, is_postgres
from omo.members import service as members
from omo.members.cards import card_token
from omo.members.models import Consent, Member, MemberIdentifier
from omo.messaging import policy, templates
from omo.messaging.adapters import Adapter, DeliveryFailed, Outgoing
from omo.messaging.models import Message, PushSubscription
from omo.messaging.schemas import DeliveryReport, MessageRead
from omo.settings import Settings
from omo.shared import clock
from omo.shared.errors import NotFound
from omo.shared.reassign import reassign_rows
from omo.shared.reassign import restore_rows as restore
from omo.shared.rows import rows_of
from omo.shared.secrets import secret_key
from omo.shared.zones import zone_of

CAP_WINDOW = timedelta(days=7)
LEASE = timedelta(minutes=5)  # a claimed message not settled by then is taken again
_ADDRESS_KIND = {"email": "email", "sms": "phone", "line": "line_id"}
_COUNTED = ("queued", "sending", "sent")
# what templates may name when the caller knows nothing of it
TEMPLATE_DEFAULTS: dict[str, Any] = {
    "coupon_code": "", "coupon_until": "", "tier": "", "points": 0, "expiring_points": 0,
    "expiring_on": "", "recommended": [], "cart": [], "next_tier": "", "to_next": "",
}  # fmt: skip


def queue(
    session: Session, *, member_id: int, channel: str, template: str, key: str,
    context: dict[str, Any], settings: Settings, journey_id: int | None = None,
    coupon_code: str | None = None,
) -> Message:  # fmt: skip
    """Queue one marketing message (idempotent on `key`). It is suppressed, with the reason,
    when the member has not consented to the channel, has no address on it, or has reached
    the channel's cap; in the member's quiet hours it waits for the morning."""
    held = session.scalar(select(Message).where(Message.key == key))
    if held is not None:
        return held
    now = clock.now()
    member = members.get_member(session, member_id)
    token = secrets.token_urlsafe(16)
    reason = _refusal(session, member_id=member_id, channel=channel, settings=settings, now=now)
    address = None if reason else _address(session, member_id, channel)
    if reason is None and address is None:
        reason = "no_address"
    locale = templates.locale_for(member.preferred_language)
    public = settings.public_url.rstrip("/")
    base = f"{public}/t/{token}"
    values = {
        "brand": settings.brand_name, "shop_url": settings.shop_url, "name": member.name or "",
        "unsubscribe_url": f"{base}/unsubscribe",
        "card_url": f"{public}/card/{card_token(secret_key(settings), member_id)}",
        "coupon_qr_url": f"{base}/coupon.png" if coupon_code else "",
        **TEMPLATE_DEFAULTS,
        **context,
    }  # fmt: skip
    rendered = templates.render(template, locale, values, link_base=base)
    due = policy.after_quiet_hours(
        now, zone=zone_of(member.country, settings.time_zone),
        start=settings.quiet_start_hour, end=settings.quiet_end_hour,
    )  # fmt: skip
    message = Message(
        key=key, member_id=member_id, channel=channel, template=template, locale=locale,
        address=address, subject=rendered.subject, body=rendered.body, links=rendered.links,
        coupon_code=coupon_code, state="suppressed" if reason else "queued", reason=reason,
        attempts=0, next_attempt_at=due, token=token, journey_id=journey_id, created_at=now,
    )  # fmt: skip
    session.add(message)
    session.flush()
    return message


def _refusal(
    session: Session, *, member_id: int, channel: str, settings: Settings, now: datetime
) -> str | None:
    granted = session.scalar(
        select(Consent.granted).where(Consent.member_id == member_id, Consent.channel == channel)
    )
    if not granted:  # no answer is no consent
        return "consent"
    cap = settings.message_caps.get(channel)
    if cap is not None:
        recent = session.scalar(
            select(func.count()).where(
                Message.member_id == member_id,
                Message.channel == channel,
                Message.state.in_(_COUNTED),
                Message.created_at > now - CAP_WINDOW,
            )
        )
        if (recent or 0) >= cap:
            return "cap"
    return None


def _address(session: Session, member_id: int, channel: str) -> str | None:
    if channel == "push":
        sub = session.scalar(
            select(PushSubscription)
            .where(PushSubscription.member_id == member_id)
            .order_by(PushSubscription.id.desc())
            .limit(1)
        )
        if sub is None:
            return None
        keys = {"p256dh": sub.p256dh, "auth": sub.auth}
        return json.dumps({"endpoint": sub.endpoint, "keys": keys})
    value = session.scalar(
        select(MemberIdentifier.value)
        .where(
            MemberIdentifier.member_id == member_id,
            MemberIdentifier.kind == _ADDRESS_KIND[channel],
        )
        .order_by(MemberIdentifier.id.desc())  # the newest one they gave us
        .limit(1)
    )
    return str(value) if value is not None else None


# --- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    id: int
    outgoing: Outgoing
    attempts: int
    country: str | None


def deliver_due(
    uow: UnitOfWork, *, adapters: dict[str, Adapter], settings: Settings, limit: int = 500
) -> DeliveryReport:
    """Send what is due, each message settled in its own transaction: sent, back to the queue
    with a back-off, or dead after the last attempt. At least once: a worker that dies between
    sending and settling leaves the message to be taken again when its lease runs out."""
    now = clock.now()
    claimed, withdrawn = uow.run(lambda s: _claim(s, now=now, limit=limit, settings=settings))
    report = DeliveryReport(withdrawn=withdrawn)
    for item in claimed:
        try:
            ref = adapters[item.outgoing.channel].send(item.outgoing)
        except DeliveryFailed as exc:
            dead = uow.run(partial(_failed, item=item, exc=exc, settings=settings))
            report.dead += dead
            report.retried += not dead
        else:
            uow.run(partial(_sent, message_id=item.id, ref=ref))
            report.sent += 1
    return report


def _claim(
    session: Session, *, now: datetime, limit: int, settings: Settings
) -> tuple[list[_Claimed], int]:
    query = (
        select(Message, Member.country)
        .join(Member, Member.id == Message.member_id)
        .where(Message.state.in_(("queued", "sending")), Message.next_attempt_at <= now)
        .order_by(Message.next_attempt_at, Message.id)
        .limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=Message)
    rows = session.execute(query).all()
    revoked = _revoked(session, [(m.member_id, m.channel) for m, _ in rows])
    claimed: list[_Claimed] = []
    withdrawn = 0
    for message, country in rows:
        if (message.member_id, message.channel) in revoked:  # opted out while it waited
            message.state, message.reason = "suppressed", "unsubscribed"
            withdrawn += 1
            continue
        message.state, message.next_attempt_at = "sending", now + LEASE
        base = f"{settings.public_url.rstrip('/')}/t/{message.token}"
        claimed.append(
            _Claimed(
                id=message.id,
                attempts=message.attempts,
                country=country,
                outgoing=Outgoing(
                    key=message.key,
                    channel=message.channel,
                    address=message.address or "",
                    subject=message.subject,
                    body=message.body,
                    pixel_url=f"{base}/open.gif",
                    unsubscribe_url=f"{base}/unsubscribe",
                ),
            )
        )
    return claimed, withdrawn


def _revoked(session: Session, pairs: list[tuple[int, str]]) -> set[tuple[int, str]]:
    if not pairs:
        return set()
    ids = sorted({m for m, _ in pairs})
    granted = {
        (m, c)
        for m, c in session.execute(
            select(Consent.member_id, Consent.channel).where(
                Consent.member_id.in_(ids), Consent.granted.is_(True)
            )
        )
    }
    return {p for p in pairs if p not in granted}


def _sent(session: Session, *, message_id: int, ref: str) -> None:
    session.execute(
        update(Message)
        .where(Message.id == message_id, Message.state == "sending")
        .values(state="sent", sent_at=clock.now(), provider_ref=ref[:200], last_error=None)
    )


def _failed(session: Session, *, item: _Claimed, exc: DeliveryFailed, settings: Settings) -> bool:
    now = clock.now()
    attempts = item.attempts + 1
    dead = exc.permanent or attempts >= settings.message_max_attempts
    retry_at = policy.after_quiet_hours(
        now + policy.backoff(attempts), zone=zone_of(item.country, settings.time_zone),
        start=settings.quiet_start_hour, end=settings.quiet_end_hour,
    )  # fmt: skip
    session.execute(
        update(Message)
        .where(Message.id == item.id, Message.state == "sending")
        .values(
            state="dead" if dead else "queued",
            attempts=attempts,
            last_error=str(exc)[:500],
            next_attempt_at=now if dead else retry_at,
        )
    )
    return dead


def retry_dead(uow: UnitOfWork, *, message_ids: list[int] | None = None) -> int:
    """Put dead letters back in the queue (after the provider is fixed)."""

    def run(session: Session) -> int:
        stmt = update(Message).where(Message.state == "dead")
        if message_ids is not None:
            stmt = stmt.where(Message.id.in_(message_ids))
        result = session.execute(
            stmt.values(state="queued", attempts=0, next_attempt_at=clock.now())
        )
        return int(getattr(result, "rowcount", 0))

    return uow.run(run)


# --- tracking ---------------------------------------------------------------------------------


def _by_token(session: Session, token: str) -> Message:
    message = session.scalar(select(Message).where(Message.token == token))
    if message is None:
        raise NotFound("no such message", field="token")
    return message


def opened(uow: UnitOfWork, *, token: str) -> None:
    def run(session: Session) -> None:
        message = _by_token(session, token)
        if message.opened_at is None:
            message.opened_at = clock.now()

    uow.run(run)


def clicked(uow: UnitOfWork, *, token: str, link: int) -> str:
    """Record a click and return where the link goes (only links the message held)."""

    def run(session: Session) -> str:
        message = _by_token(session, token)
        if not 0 <= link < len(message.links):
            raise NotFound("no such link in this message", field="link")
        now = clock.now()
        message.clicked_at = message.clicked_at or now
        message.opened_at = message.opened_at or now  # a click proves the open
        return message.links[link]

    return uow.run(run)


def channel_of(uow: UnitOfWork, *, token: str) -> str:
    with uow.read() as session:
        return _by_token(session, token).channel


def unsubscribe(uow: UnitOfWork, *, token: str) -> str:
    """One-click opt-out of the message's channel; returns the channel."""

    def run(session: Session) -> str:
        message = _by_token(session, token)
        members.set_consents(
            session, member_id=message.member_id, consents={message.channel: False},
            source="unsubscribe", now=clock.now(),
        )  # fmt: skip
        return message.channel

    return uow.run(run)


def coupon_of(uow: UnitOfWork, *, token: str) -> str:
    with uow.read() as session:
        code = _by_token(session, token).coupon_code
    if code is None:
        raise NotFound("this message carries no coupon", field="token")
    return code


def counts_by_state(session: Session) -> dict[str, int]:
    """Messages per state (an operations metric)."""
    rows = session.execute(select(Message.state, func.count()).group_by(Message.state))
    return {str(state): int(n) for state, n in rows}


def member_messages(uow: UnitOfWork, *, member_id: int, limit: int = 100) -> list[MessageRead]:
    with uow.read() as session:
        rows = session.scalars(
            select(Message)
            .where(Message.member_id == member_id)
            .order_by(Message.id.desc())
            .limit(limit)
        )
        return [MessageRead.model_validate(m) for m in rows]


def add_push_subscription(
    uow: UnitOfWork, *, member_id: int, endpoint: str, p256dh: str, auth: str
) -> None:
    def run(session: Session) -> None:
        members.get_member(session, member_id)
        held = session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))
        if held is not None:
            held.member_id, held.p256dh, held.auth = member_id, p256dh, auth
            return
        session.add(
            PushSubscription(
                member_id=member_id, endpoint=endpoint, p256dh=p256dh, auth=auth,
                created_at=clock.now(),
            )
        )  # fmt: skip

    uow.run(run)


def reassign_members(session: Session, mapping: Mapping[int, int]) -> dict[int, list[int]]:
    return reassign_rows(session, id_col=Message.id, member_col=Message.member_id, mapping=mapping)


def restore_rows(session: Session, *, row_ids: Sequence[int], from_id: int, to_id: int) -> None:
    restore(
        session, id_col=Message.id, member_col=Message.member_id, row_ids=list(row_ids),
        from_id=from_id, to_id=to_id,
    )  # fmt: skip


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {
        "messages": rows_of(session, Message, Message.member_id, member_ids),
        "push_subscriptions": rows_of(
            session, PushSubscription, PushSubscription.member_id, member_ids
        ),
    }


def erase(session: Session, *, member_ids: Sequence[int]) -> None:
    """Messages keep their state (journey reports still add up) but not where they went or what
    they said; queued ones are withdrawn; push subscriptions go."""
    ids = list(member_ids)
    session.execute(
        update(Message)
        .where(Message.member_id.in_(ids), Message.state.in_(("queued", "sending")))
        .values(state="suppressed", reason="erased")
    )
    session.execute(
        update(Message)
        .where(Message.member_id.in_(ids))
        .values(address=None, subject=None, body="", links=[], coupon_code=None)
    )
    session.execute(delete(PushSubscription).where(PushSubscription.member_id.in_(ids)))
