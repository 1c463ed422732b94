"""The till's receipt journal: read from what a POS exports, and matched against the day."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.checkout.dayclose.days import Day, brand_day, of_day, store_day_of
from omo.checkout.dayclose.schemas import (
    MAX_RECEIPTS,
    Differing,
    Elsewhere,
    Reconciliation,
    ReturnFound,
    ReturnsCheck,
    TillJournal,
    Unlisted,
)
from omo.commerce import service as commerce
from omo.commerce.channels import Channel
from omo.commerce.models import Order, OrderRefund
from omo.db import UnitOfWork
from omo.shared import clock
from omo.shared.errors import Forbidden, ValidationFailed
from omo.shared.money import ZERO

_CHUNK = 500  # receipt numbers per IN (…) look-up


def reconcile(
    uow: UnitOfWork,
    *,
    store: str,
    day: date,
    time_zone: str,
    journal: TillJournal,
    principal: Principal,
) -> Reconciliation:
    """The till's receipts for the day matched against what OMO recorded; changes nothing."""
    with uow.read() as session:
        return _matched(session, store_day_of(session, store, day, time_zone, principal), journal)


def reconcile_channel(
    uow: UnitOfWork, *, day: date, time_zone: str, journal: TillJournal, principal: Principal
) -> Reconciliation:
    """A channel's orders of the day, at every store and none (a web shop's or a marketplace's
    export), matched against what OMO recorded; changes nothing."""
    if principal.store_id is not None:
        raise Forbidden("this API key is bound to a store: it reconciles that store's day",
                        code="wrong_store")  # fmt: skip
    with uow.read() as session:
        return _matched(session, brand_day(day, time_zone), journal)


def _matched(session: Session, d: Day, journal: TillJournal) -> Reconciliation:
    channel = journal.channel.value
    held = {
        r.external_id: r
        for r in session.execute(
            select(Order.id, Order.external_id, Order.total, Order.status).where(
                *of_day(d), Order.channel == channel
            )
        )
    }
    listed = {r.external_id: r.total for r in journal.receipts if r.total >= 0}
    slips = {r.external_id: -r.total for r in journal.receipts if r.total < 0}
    matched = 0
    differing: list[Differing] = []
    absent: list[str] = []
    for external_id, total in listed.items():
        row = held.get(external_id)
        if row is None:
            absent.append(external_id)
        elif row.total == total and row.status != "cancelled":
            matched += 1
        else:
            differing.append(
                Differing(
                    external_id=external_id, order_id=row.id, till_total=total,
                    recorded_total=row.total, status=row.status,
                )
            )  # fmt: skip
    elsewhere = _recorded_elsewhere(session, d, absent)
    found = {e.external_id for e in elsewhere}
    unlisted = [
        Unlisted(external_id=k, order_id=r.id, total=r.total, status=r.status)
        for k, r in sorted(held.items(), key=lambda kv: kv[1].id)
        if k not in listed
    ]
    missing = [k for k in absent if k not in found]
    returns = _returns(session, d, channel, slips) if slips else None
    settled = returns is None or not (
        returns.missing or returns.elsewhere or returns.differing or returns.unlisted
    )
    return Reconciliation(
        store=d.store.code if d.store else None, date=d.day, channel=channel,
        complete=d.complete, till_receipts=len(listed), till_total=sum(listed.values(), ZERO),
        recorded=len(held), recorded_total=sum((r.total for r in held.values()), ZERO),
        matched=matched, missing=missing, elsewhere=elsewhere, differing=differing,
        unlisted=unlisted, returns=returns,
        balanced=settled and not (missing or elsewhere or differing or unlisted),
    )  # fmt: skip


def _returns(session: Session, d: Day, channel: str, slips: dict[str, Decimal]) -> ReturnsCheck:
    """The journal's return slips against the refunds given at the day's till (the channel's,
    at every store, for a channel's day): a slip's number is the key the till refunded with."""
    codes = {s.id: s.code for s in commerce.list_stores(session)}
    here = (
        (OrderRefund.store_id == d.store.id) if d.store is not None else (Order.channel == channel),
        OrderRefund.created_at >= d.since, OrderRefund.created_at < d.until,
    )  # fmt: skip
    held = [_found(r, d, codes) for r in session.execute(_REFUNDS.where(*here))]
    keyed = {f.key: f for f in held}
    others: dict[str, ReturnFound] = {}
    away = [k for k in slips if k not in keyed]
    for chunk in _chunks([f"refund:{k}" for k in away]):
        for r in session.execute(_REFUNDS.where(OrderRefund.idempotency_key.in_(chunk))):
            others[r.key.removeprefix("refund:")] = _found(r, d, codes)
    matched, differing, elsewhere, missing = 0, [], [], []
    for key, amount in slips.items():
        if (f := keyed.get(key)) is not None:
            if f.recorded_amount == amount:
                matched += 1
            else:
                differing.append(f.model_copy(update={"till_amount": amount}))
        elif (f := others.get(key)) is not None:
            elsewhere.append(f.model_copy(update={"till_amount": amount}))
        else:
            missing.append(key)
    return ReturnsCheck(
        till_returns=len(slips), till_refunded=sum(slips.values(), ZERO), recorded=len(held),
        recorded_refunded=sum((f.recorded_amount for f in held), ZERO), matched=matched,
        missing=missing, elsewhere=elsewhere, differing=differing,
        unlisted=[f for f in held if f.key not in slips],
    )  # fmt: skip


_REFUNDS = (
    select(OrderRefund.idempotency_key.label("key"), OrderRefund.order_id, Order.external_id,
           OrderRefund.amount, OrderRefund.store_id, OrderRefund.created_at)
    .join(Order, Order.id == OrderRefund.order_id)
    .order_by(OrderRefund.created_at, OrderRefund.id)
)  # fmt: skip


def _found(r: Any, d: Day, codes: dict[int, str]) -> ReturnFound:
    """A refund OMO holds, as a return slip is matched against it."""
    return ReturnFound(
        key=r.key.removeprefix("refund:"), order_id=r.order_id, external_id=r.external_id,
        till_amount=None, recorded_amount=r.amount,
        store=codes.get(r.store_id) if r.store_id else None,
        date=clock.as_utc(r.created_at).astimezone(d.zone).date(),
    )  # fmt: skip


_SEPARATOR = re.compile(r"[\t,;\s]+")


def parse_journal(text: str, channel: Channel = Channel.POS) -> TillJournal:
    """A journal pasted from the POS: a receipt number and its total per line, separated by a
    tab, comma, semicolon or spaces (`POS-1 1,030`; NT$ and $ signs are dropped), or as CSV
    with quoted cells (`POS-1,"1,030"`); a first line with no digit in it is a header. A bad
    line is refused by its number."""
    receipts: list[dict[str, str]] = []
    line_of: list[int] = []  # the text's line number of each receipt
    first = True
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith('"') or ',"' in line:  # a CSV cell quoted: "1,030"
            parts = [cell.strip() for cell in next(csv.reader([line])) if cell.strip()][:2]
        else:
            parts = _SEPARATOR.split(line, maxsplit=1)
        if parts in ([""], []):
            continue
        if first and not any(c.isdigit() for c in raw):
            first = False
            continue  # a header: 單號,金額 (a receipt's line has digits)
        first = False
        total = parts[1] if len(parts) == 2 else ""
        total = total.replace(",", "").replace("NT$", "").replace("$", "").strip()
        if not total:
            raise ValidationFailed(f"line {n}: a receipt number and its total", field="journal")
        if len(receipts) == MAX_RECEIPTS:
            raise ValidationFailed(f"more than {MAX_RECEIPTS:,} receipts", field="journal")
        receipts.append({"external_id": parts[0], "total": total})
        line_of.append(n)
    try:
        return TillJournal.model_validate({"channel": channel, "receipts": receipts})
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        twice = re.match(r"receipts\.(\d+)\.external_id: (.*)", msg)
        loc = err["loc"]
        at = int(twice.group(1)) if twice else loc[1] if len(loc) > 1 else None
        said = twice.group(2) if twice else f"{loc[-1]}: {msg}"
        where = f"line {line_of[at]}: " if isinstance(at, int) else ""
        raise ValidationFailed(f"{where}{said}", field="journal") from None


def _recorded_elsewhere(session: Session, d: Day, external_ids: Sequence[str]) -> list[Elsewhere]:
    """Of these receipt numbers, those recorded at another store or on another day, or under
    another channel (whatever its store and day: not the journal's sale, as OMO holds it)."""
    found: list[Elsewhere] = []
    if not external_ids:
        return found
    codes = {s.id: s.code for s in commerce.list_stores(session)}
    channels = [c.value for c in Channel]  # the (channel, number) index takes both IN lists
    for chunk in _chunks(external_ids):
        rows = session.execute(
            select(Order.id, Order.external_id, Order.channel, Order.store_id, Order.ordered_at,
                   Order.total)
            .where(Order.channel.in_(channels), Order.external_id.in_(chunk))
            .order_by(Order.id)
        ).all()  # fmt: skip
        for r in rows:
            found.append(
                Elsewhere(
                    external_id=r.external_id, order_id=r.id, channel=r.channel,
                    store=codes.get(r.store_id) if r.store_id else None,
                    date=r.ordered_at.astimezone(d.zone).date(), total=r.total,
                )
            )  # fmt: skip
    return found


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
