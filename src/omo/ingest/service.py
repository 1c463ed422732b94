"""Ingest: enrolments, orders and events from every channel. Each use case first resolves who
the identifiers name (identity), then records into the areas, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.commerce import service as commerce
from omo.commerce.channels import COUNTED_STATUSES
from omo.commerce.schemas import OrderIn, OrderResult
from omo.db import UnitOfWork
from omo.events import service as events
from omo.events.kinds import EventKind
from omo.events.schemas import EventBatchResult, EventIn
from omo.identity import service as identity
from omo.ingest.schemas import EnrolResult
from omo.members import service as members
from omo.members.identifiers import Identifier, InvalidIdentifier, normalise
from omo.members.schemas import IdentifierIn, MemberRead, MemberUpsert
from omo.messaging import outbox
from omo.points import service as points
from omo.referrals import service as referrals
from omo.shared import clock
from omo.shared.errors import ValidationFailed
from omo.shared.pins import memo
from omo.tiers import service as tiers

# Clocks of tills drift; an order stamped a little ahead of ours is still plausible.
FUTURE_SLACK = timedelta(minutes=10)


def normalise_all(
    identifiers: Sequence[IdentifierIn], *, field: str, region: str
) -> list[Identifier]:
    out = []
    for n, ident in enumerate(identifiers):
        try:
            out.append(normalise(ident.kind, ident.value, ident.namespace, region=region))
        except InvalidIdentifier as exc:
            raise ValidationFailed(str(exc), field=f"{field}.{n}.value") from None
    return list(dict.fromkeys(out))


def enrol_member(
    uow: UnitOfWork, *, data: MemberUpsert, principal: Principal, region: str
) -> EnrolResult:
    """Enrol a person, or update the member their identifiers name (merging any duplicates).
    A person enrolled now (no earlier joined_at given) gets the programme's sign-up bonus."""
    idents = normalise_all(data.identifiers, field="identifiers", region=region)
    return uow.run(
        lambda session: enrol_in(
            session,
            data=data,
            idents=idents,
            principal=principal,
            now=clock.now(),
            welcome=data.joined_at is None,
        )
    )


def enrol_in(
    session: Session,
    *,
    data: MemberUpsert,
    idents: Sequence[Identifier],
    principal: Principal,
    now: datetime,
    welcome: bool = False,
) -> EnrolResult:
    """enrol_member inside a caller's transaction (bulk import runs many in one, without
    `welcome`: the sign-up bonus is for people who join now)."""
    profile = data.model_dump(include=set(members.PROFILE_FIELDS))
    store_id = None
    if data.join_store:
        store_id = commerce.store_by_code(session, data.join_store, field="join_store").id
    named_before = set(members.members_named_by(session, idents).values())
    member_id = identity.resolve(session, identifiers=idents, actor=principal.name, now=now)
    created = member_id is None
    if member_id is None:
        member = members.create_member(
            session,
            profile=profile,
            joined_at=data.joined_at or now,
            join_channel=data.join_channel,
            join_store_id=store_id,
            now=now,
        )
        commerce.init_stats(session, member_id=member.id)
        if data.referral_code:
            referrals.attribute(session, referee_id=member.id, code=data.referral_code, now=now)
        if welcome:
            points.award_signup(session, member_id=member.id, now=now)
    else:
        member = members.get_member(session, member_id)
        members.update_profile(session, member, profile=profile, now=now)
    new = members.add_identifiers(
        session,
        member_id=member.id,
        identifiers=idents,
        source_channel=data.join_channel,
        now=now,
    )
    if data.consents:
        members.set_consents(
            session,
            member_id=member.id,
            consents={k.value: v for k, v in data.consents.items()},
            source=data.join_channel or "api",
            now=now,
        )
    linked = identity.link_guest_activity(session, member_id=member.id, identifiers=new, now=now)
    if created:
        outbox.publish(
            session, topic="MemberEnrolled", key=f"member:{member.id}", now=now,
            payload={"member_id": member.id, "join_channel": data.join_channel,
                     "join_store_id": store_id},
        )  # fmt: skip
    return EnrolResult(
        member=MemberRead.model_validate(member),
        created=created,
        merged_member_ids=sorted(named_before - {member.id}),
        linked_guest_orders=linked["orders"],
        linked_events=linked["events"],
    )


def record_order(
    uow: UnitOfWork, *, order: OrderIn, principal: Principal, currency: str, region: str
) -> OrderResult:
    """Record an order once (a retry returns the first result), tied to whoever it names."""
    check_currency(order, currency)
    idents = normalise_all(order.customer, field="customer", region=region)
    digest = commerce.payload_hash(order)
    return uow.run(
        lambda session: record_order_in(
            session,
            order=order,
            idents=idents,
            digest=digest,
            principal=principal,
            now=clock.now(),
        )
    )


def check_currency(order: OrderIn, currency: str) -> None:
    if order.currency != currency:
        raise ValidationFailed(
            f"this installation books {currency}; got {order.currency}", field="currency"
        )


def record_order_in(
    session: Session,
    *,
    order: OrderIn,
    idents: Sequence[Identifier],
    digest: str,
    principal: Principal,
    now: datetime,
    unrecorded: bool = False,
    member_current: bool = False,
    earn_on: Sequence[tuple[str | None, Decimal]] | None = None,
) -> OrderResult:
    """record_order inside a caller's transaction (bulk import runs many in one).
    `unrecorded`: the caller has just looked the order up in this transaction and not found it.
    `member_current`: the caller has just resolved order.member_id (following merges) in this
    transaction — a checkout priced the sale for that member.
    `earn_on`: what each line earns on (category, paid), as a checkout placed its coupons;
    else the order's discount is spread over its lines in proportion."""
    existing = None if unrecorded else commerce.recorded_order(
        session, channel=order.channel.value, external_id=order.external_id, digest=digest
    )  # fmt: skip
    if existing is not None:
        return commerce.order_result(session, existing, replayed=True)
    store_id = None
    if order.store:
        store = commerce.store_by_code(session, order.store)
        store_id = store.id
    principal.check_store(store_id, field="store")
    if order.ordered_at > now + FUTURE_SLACK:
        raise ValidationFailed("ordered_at lies in the future", field="ordered_at")
    member_id = identity.resolve(session, identifiers=idents, actor=principal.name, now=now)
    if order.member_id is not None:
        named = (
            order.member_id
            if member_current
            else members.current_member_id(session, order.member_id)
        )
        if member_id is not None and member_id != named:
            raise ValidationFailed(
                f"member_id {order.member_id} and the customer identifiers name different "
                f"members ({named} and {member_id})",
                field="member_id",
            )
        member_id = named
    row = commerce.record_order(
        session, order=order, member_id=member_id, store_id=store_id, contacts=idents,
        digest=digest, now=now,
    )  # fmt: skip
    outbox.publish(
        session, topic="OrderRecorded", key=f"order:{row.id}", now=now, new_key=True,
        payload={"order_id": row.id, "external_id": row.external_id, "member_id": member_id,
                 "channel": row.channel, "store_id": row.store_id, "total": str(row.total),
                 "status": row.status, "ordered_at": row.ordered_at.isoformat()},
    )  # fmt: skip
    if member_id is not None:
        # Identifiers seen with a known member (a Shopee buyer id next to the phone) become
        # theirs, and earlier guest activity under them follows.
        new = members.add_identifiers(
            session,
            member_id=member_id,
            identifiers=idents,
            source_channel=order.channel.value,
            now=now,
        )
        identity.link_guest_activity(session, member_id=member_id, identifiers=new, now=now)
        if row.status in COUNTED_STATUSES:
            if earn_on is None:
                lines = [
                    (li.category, li.line_total) for li in commerce.order_lines(session, row.id)
                ]
                spread = order.discount_total
            else:
                lines, spread = list(earn_on), Decimal(0)
            multiplier = tiers.multiplier_of(session, member_id=member_id)
            earned = points.award_for_order(
                session,
                member_id=member_id,
                order_id=row.id,
                channel=row.channel,
                store=order.store,
                ordered_at=order.ordered_at,
                lines=lines,
                order_discount=spread,
                tier_multiplier=multiplier,
                now=now,
                new_order=True,
            )
            memo(session, "points_earned")[row.id] = earned.points if earned else 0
            referrals.reward_ahead(session, member_id=member_id, amount=row.total)
            tiers.evaluate_in(session, member_id=member_id, now=now)
            referrals.reward_on_order(
                session, member_id=member_id, order_id=row.id, amount=row.total,
                ordered_at=row.ordered_at, now=now, open_review=identity.open_between,
            )  # fmt: skip
    return commerce.order_result(session, row, replayed=False)


def record_events(
    uow: UnitOfWork, *, batch: Sequence[EventIn], principal: Principal, region: str,
    live: bool = True,
) -> EventBatchResult:  # fmt: skip
    """Record a batch of events; those already recorded (same event_id) are skipped. A member's
    review earns the programme's review bonus — unless the batch is history (`live` false: an
    import), which earns nothing."""
    idents = [
        normalise_all(e.identifiers, field=f"events.{n}.identifiers", region=region)
        for n, e in enumerate(batch)
    ]

    def run(session: Session) -> EventBatchResult:
        now = clock.now()
        known = events.known_event_ids(session, (e.event_id for e in batch))
        stores: dict[str, int] = {}
        resolved: list[events.ResolvedEvent] = []
        seen: set[str] = set()
        for n, (event, ids) in enumerate(zip(batch, idents, strict=True)):
            if event.event_id in known or event.event_id in seen:
                continue
            seen.add(event.event_id)
            if event.occurred_at > now + FUTURE_SLACK:
                raise ValidationFailed(
                    "occurred_at lies in the future", field=f"events.{n}.occurred_at"
                )
            store_id = None
            if event.store:
                if event.store not in stores:
                    stores[event.store] = commerce.store_by_code(
                        session, event.store, field=f"events.{n}.store"
                    ).id
                store_id = stores[event.store]
            principal.check_store(store_id, field=f"events.{n}.store", required=False)
            member_id = identity.resolve(session, identifiers=ids, actor=principal.name, now=now)
            if event.member_id is not None:
                member_id = members.current_member(session, event.member_id).id
            resolved.append(
                events.ResolvedEvent(
                    event=event,
                    member_id=member_id,
                    store_id=store_id,
                    contact=ids[0] if ids else None,
                )
            )
        accepted = events.record_events(session, events=resolved, now=now)
        for r in resolved:
            if live and r.event.kind == EventKind.REVIEW and r.member_id is not None:
                bought = r.event.sku is not None and commerce.has_bought(
                    session, member_id=r.member_id, sku=r.event.sku
                )
                points.award_review(session, member_id=r.member_id, event_id=r.event.event_id,
                                    sku=r.event.sku, bought=bought, now=now)  # fmt: skip
        return EventBatchResult(
            accepted=accepted,
            duplicates=len(batch) - accepted,
            linked_to_members=sum(1 for r in resolved if r.member_id is not None),
        )

    return uow.run(run)
