"""`omo import`: validate the whole file first, then write — never a silent half-import.

1. Read every row and build the areas' inputs (shapes.py); validate each with the same schemas
   as the API, and check against the database what a schema cannot (stores exist, an order id
   already recorded with other content, the currency).
2. Any bad row refuses the whole file with row, column and reason for each — unless a
   quarantine file is given: then good rows land and bad rows go there with their reasons.
3. Write. Orders take a bulk path when identity needs no decision (every identifier already
   names the same member, or none names anyone): ids reserved in a block, rows appended with
   executemany, stats rebuilt set-based. Orders that join or extend identities go through the
   same use case as POST /orders, in the same transaction. Members and events always do.

Re-importing a file changes nothing: orders and events are idempotent on their ids, members on
their identifiers, stores and products on their codes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.commerce import service as commerce
from omo.commerce.models import MemberStats, Order, OrderContact, OrderLine, Product, Store
from omo.commerce.schemas import OrderIn, ProductUpsert, StoreUpsert
from omo.db import UnitOfWork
from omo.events import service as events
from omo.events.schemas import EventIn
from omo.identity import service as identity
from omo.ingest import bulk
from omo.ingest import service as ingest
from omo.members import service as members
from omo.members.identifiers import Identifier, InvalidIdentifier, normalise
from omo.members.models import Consent, Member, MemberIdentifier
from omo.members.schemas import MemberUpsert
from omo.shared import clock
from omo.shared.errors import DomainError
from omo.shared.sqlmatch import keys_in
from omo.transfer.formats import Row, UnreadableFile, detect_format, read_rows, write_csv
from omo.transfer.shapes import (
    KINDS,
    MEMBER_REF,
    SHAPES,
    Record,
    RowError,
    ShapeError,
    records_for,
)

CHUNK = 2_000
MAX_REPORTED = 200
SCHEMAS: dict[str, type[BaseModel]] = {
    "stores": StoreUpsert,
    "products": ProductUpsert,
    "members": MemberUpsert,
    "orders": OrderIn,
    "events": EventIn,
}
KEYS = {"stores": "code", "products": "sku"}


class ImportRefused(Exception):
    """The file was refused whole; nothing was written."""

    def __init__(self, message: str, errors: Sequence[RowError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)


@dataclass
class ImportReport:
    kind: str
    shape: str
    rows: int = 0
    records: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected_rows: int = 0
    bulk: int = 0  # orders written on the bulk path
    seconds: float = 0.0
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.rows / self.seconds if self.seconds else 0.0
        return (
            f"import {self.kind} ({self.shape}): rows={self.rows} records={self.records} "
            f"created={self.created} updated={self.updated} unchanged={self.unchanged} "
            f"rejected_rows={self.rejected_rows} in {self.seconds:.1f}s ({rate:,.0f} rows/s)"
        )


@dataclass
class Valid:
    record: Record
    model: Any
    idents: list[Identifier] = field(default_factory=list)
    digest: str = ""
    member_ref: Identifier | None = None


Progress = Callable[[int], None]


def import_file(
    uow: UnitOfWork,
    *,
    kind: str,
    path: Path,
    fmt: str | None = None,
    shape: str = "omo",
    quarantine: Path | None = None,
    timezone: str = "Asia/Taipei",
    region: str = "TW",
    currency: str = "TWD",
    principal: Principal | None = None,
    encoding: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    started = time.perf_counter()
    if kind not in KINDS:
        raise ImportRefused(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if shape not in SHAPES:
        raise ImportRefused(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    try:
        tz = ZoneInfo(timezone)
    except (KeyError, ValueError):
        raise ImportRefused(f"unknown time zone {timezone!r}") from None
    who = principal or Principal("import")
    try:
        fmt = detect_format(path, fmt)
        rows = dict(read_rows(path, fmt, encoding=encoding))
        records, errors = records_for(kind, shape, rows.items(), tz)
    except (UnreadableFile, ShapeError) as exc:
        raise ImportRefused(str(exc)) from None
    report = ImportReport(kind=kind, shape=shape, rows=len(rows), records=len(records))
    valid, bad = _validate(kind, records, region)
    errors.extend(bad)
    errors.extend(_check_against_database(uow, kind, valid, currency))
    if errors:
        errors.sort(key=lambda e: (e.row, e.column))
        if quarantine is None:
            raise ImportRefused(
                f"{len({e.row for e in errors})} bad row(s); nothing was imported", errors
            )
        bad_rows = {e.row for e in errors}
        # a record with one bad row is rejected whole (an order with a bad line is not half-kept)
        for rec in records:
            if bad_rows.intersection(rec.rows):
                errors.extend(
                    RowError(n, "(record)", f"rejected with row {min(bad_rows & set(rec.rows))}")
                    for n in rec.rows
                    if n not in bad_rows
                )
        bad_rows = {e.row for e in errors}
        _write_rejects(quarantine, rows, errors)
        valid = [v for v in valid if not bad_rows.intersection(v.record.rows)]
        report.rejected_rows = len(bad_rows)
        report.errors = errors
    writer = {
        "stores": _write_catalogue,
        "products": _write_catalogue,
        "members": _write_members,
        "orders": _write_orders,
        "events": _write_events,
    }[kind]
    writer(uow, kind, valid, who, report, progress or (lambda n: None), region)
    report.seconds = time.perf_counter() - started
    return report


# --- validation -------------------------------------------------------------------------------


def _validate(kind: str, records: list[Record], region: str) -> tuple[list[Valid], list[RowError]]:
    schema = SCHEMAS[kind]
    key = KEYS.get(kind)
    valid: list[Valid] = []
    errors: list[RowError] = []
    seen: dict[Any, int] = {}
    for rec in records:
        data = dict(rec.data)
        ident = data.pop(key, None) if key else None
        if key and not ident:
            errors.append(RowError(rec.rows[0], key, "required"))
            continue
        try:
            model = schema.model_validate(data)
        except ValidationError as exc:
            errors.extend(_row_errors(rec, exc))
            continue
        item = Valid(rec, (ident, model) if key else model)
        try:
            if isinstance(model, OrderIn):
                item.idents = ingest.normalise_all(model.customer, field="customer", region=region)
                item.digest = commerce.payload_hash(model)
            elif isinstance(model, MemberUpsert | EventIn):
                item.idents = ingest.normalise_all(
                    model.identifiers, field="identifiers", region=region
                )
        except DomainError as exc:
            row, column = rec.locate(tuple(_loc(exc.field)))
            errors.append(RowError(row, column, exc.message))
            continue
        if rec.member_ref:
            try:
                kind_, _, rest = str(rec.member_ref).partition(":")
                ns, _, value = rest.partition(":")
                item.member_ref = normalise(kind_, value, ns or None, region=region)
            except InvalidIdentifier as exc:
                errors.append(RowError(rec.rows[0], MEMBER_REF, str(exc)))
                continue
        dup = ident if key else _natural_key(kind, model)
        if dup is not None:
            if dup in seen:
                errors.append(RowError(rec.rows[0], key or "id", f"repeats row {seen[dup]}"))
                continue
            seen[dup] = rec.rows[0]
        valid.append(item)
    return valid, errors


def _natural_key(kind: str, model: Any) -> Any:
    if kind == "orders":
        return (model.channel.value, model.external_id)
    if kind == "events":
        return model.event_id
    return None


def _loc(path: str | None) -> list[Any]:
    parts: list[Any] = []
    for p in (path or "").split("."):
        parts.append(int(p) if p.isdigit() else p)
    return parts


def _row_errors(rec: Record, exc: ValidationError) -> Iterator[RowError]:
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        head, sep, rest = msg.partition(": ")
        if sep and not loc and head.isidentifier():
            loc, msg = (head,), rest  # model-level checks say which field they are about
        row, column = rec.locate(loc)
        yield RowError(row, column, msg)


def _check_against_database(
    uow: UnitOfWork, kind: str, valid: list[Valid], currency: str
) -> list[RowError]:
    if kind not in ("orders", "members", "events"):
        return []
    errors: list[RowError] = []
    now = clock.now()
    with uow.read() as session:
        stores = {code for (code,) in session.execute(select(Store.code))}
        known: dict[tuple[str, str], str] = {}
        if kind == "orders":
            keys = [(v.model.channel.value, v.model.external_id) for v in valid]
            for chunk in _chunks(keys, 500):
                rows = session.execute(
                    select(Order.channel, Order.external_id, Order.payload_hash).where(
                        keys_in((Order.channel, Order.external_id), chunk)
                    )
                )
                known.update({(c, e): h for c, e, h in rows})
    for v in valid:
        rec, m = v.record, v.model
        store = getattr(m, "join_store" if kind == "members" else "store", None)
        if store and store not in stores:
            row, column = rec.locate(("join_store" if kind == "members" else "store",))
            errors.append(RowError(row, column, f"no store with code {store!r}"))
        if kind == "orders":
            if m.currency != currency:
                row, column = rec.locate(("currency",))
                errors.append(RowError(row, column, f"this installation books {currency}"))
            if m.ordered_at > now + ingest.FUTURE_SLACK:
                row, column = rec.locate(("ordered_at",))
                errors.append(RowError(row, column, "lies in the future"))
            held = known.get((m.channel.value, m.external_id))
            if held is not None and held != v.digest:
                row, column = rec.locate(("external_id",))
                errors.append(RowError(row, column, "already recorded with different content"))
        if kind == "events" and m.occurred_at > now + ingest.FUTURE_SLACK:
            row, column = rec.locate(("occurred_at",))
            errors.append(RowError(row, column, "lies in the future"))
    return errors


def _write_rejects(path: Path, rows: dict[int, Row], errors: list[RowError]) -> None:
    """The bad rows as they were, with the reasons: fix them and import this file again."""
    reasons: dict[int, list[str]] = {}
    for e in errors:
        reasons.setdefault(e.row, []).append(f"{e.column}: {e.message}")
    columns: list[str] = []
    for n in reasons:
        for c in rows.get(n, {}):
            if c not in columns:
                columns.append(c)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(
        path,
        ["_row", "_errors", *columns],
        (
            [n, "; ".join(reasons[n]), *(_flat(rows.get(n, {}).get(c)) for c in columns)]
            for n in sorted(reasons)
        ),
    )


def _flat(value: Any) -> Any:
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, ensure_ascii=False, default=str)
    return value


# --- writing ----------------------------------------------------------------------------------


def _write_catalogue(
    uow: UnitOfWork,
    kind: str,
    valid: list[Valid],
    who: Principal,
    report: ImportReport,
    progress: Progress,
    region: str,
) -> None:
    model: type[Store] | type[Product] = Store if kind == "stores" else Product
    key = Store.code if kind == "stores" else Product.sku
    with uow.write() as session:
        for v in valid:
            code, data = v.model
            held = session.scalar(select(model).where(key == code))
            before = {f: getattr(held, f) for f in type(data).model_fields} if held else None
            if kind == "stores":
                commerce.upsert_store(session, code=code, data=data)
            else:
                commerce.upsert_product(session, sku=code, data=data)
            _count(report, before is None, before != data.model_dump())
        progress(len(valid))


def _count(report: ImportReport, created: bool, changed: bool) -> None:
    if created:
        report.created += 1
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1


def _write_members(
    uow: UnitOfWork,
    kind: str,
    valid: list[Valid],
    who: Principal,
    report: ImportReport,
    progress: Progress,
    region: str,
) -> None:
    # identifiers that more than one row of the file carries: those rows need the use case
    seen = Counter(i for v in valid for i in set(v.idents))
    shared = {i for i, n in seen.items() if n > 1}
    for chunk in _chunks(valid, CHUNK):

        def run(session: Session, chunk: list[Valid] = chunk) -> list[tuple[bool, bool]]:
            return _members_chunk(session, chunk, who, shared)

        for created, changed in uow.run(run):
            _count(report, created, changed)
        progress(sum(len(v.record.rows) for v in chunk))


def _members_chunk(
    session: Session, chunk: list[Valid], who: Principal, shared: set[Identifier]
) -> list[tuple[bool, bool]]:
    """New people with identifiers no one holds are appended in bulk; anyone the database or
    another row already knows goes through the enrol use case (update, merge, link)."""
    now = clock.now()
    known = members.members_named_by(session, [i for v in chunk for i in v.idents])
    fast = [v for v in chunk if v.idents and not any(i in known or i in shared for i in v.idents)]
    fast_ids = {id(v) for v in fast}
    _append_members(session, fast, now)
    out = []
    for v in chunk:
        if id(v) in fast_ids:
            out.append((True, True))
            continue
        before = {i: known.get(i) for i in v.idents}
        result = ingest.enrol_in(session, data=v.model, idents=v.idents, principal=who, now=now)
        changed = (
            any(m is None for m in before.values())
            or bool(result.merged_member_ids)
            or result.member.updated_at == now
        )
        out.append((result.created, changed))
    return out


def _append_members(session: Session, items: list[Valid], now: datetime) -> None:
    if not items:
        return
    conn = session.connection()
    stores: dict[str, int] = {c: i for c, i in session.execute(select(Store.code, Store.id))}
    member_ids = bulk.take_ids(conn, Member.__table__, len(items))  # type: ignore[arg-type]
    n_idents = sum(len(v.idents) for v in items)
    ident_ids = iter(bulk.take_ids(conn, MemberIdentifier.__table__, n_idents))  # type: ignore[arg-type]
    n_consents = sum(len(v.model.consents or {}) for v in items)
    consent_ids = iter(bulk.take_ids(conn, Consent.__table__, n_consents))  # type: ignore[arg-type]
    rows, idents, consents, stats = [], [], [], []
    for v, mid in zip(items, member_ids, strict=True):
        m: MemberUpsert = v.model
        rows.append({
            **m.model_dump(include=set(members.PROFILE_FIELDS)),
            "id": mid, "status": "active", "merged_into_id": None,
            "joined_at": m.joined_at or now, "join_channel": m.join_channel,
            "join_store_id": stores[m.join_store] if m.join_store else None,
            "created_at": now, "updated_at": now,
        })  # fmt: skip
        for ident in v.idents:
            idents.append({
                "id": next(ident_ids), "member_id": mid, "kind": ident.kind.value,
                "namespace": ident.namespace, "value": ident.value,
                "source_channel": m.join_channel, "created_at": now,
            })  # fmt: skip
        for channel, granted in (m.consents or {}).items():
            consents.append({
                "id": next(consent_ids), "member_id": mid, "channel": channel.value,
                "granted": granted, "source": m.join_channel or "api", "updated_at": now,
            })  # fmt: skip
        stats.append({
            "member_id": mid, "order_count": 0, "total_spend": 0, "online_spend": 0,
            "offline_spend": 0, "online_orders": 0, "offline_orders": 0, "updated_at": now,
        })  # fmt: skip
    bulk.append(conn, Member.__table__, rows)  # type: ignore[arg-type]
    bulk.append(conn, MemberIdentifier.__table__, idents)  # type: ignore[arg-type]
    bulk.append(conn, Consent.__table__, consents)  # type: ignore[arg-type]
    bulk.append(conn, MemberStats.__table__, stats)  # type: ignore[arg-type]
    # earlier guest orders and anonymous events under these identifiers become the member's
    everyone = [i for v in items for i in v.idents]
    guests = commerce.guest_contacts_among(session, everyone) | events.guest_contacts_among(
        session, everyone
    )
    if guests:
        for v, mid in zip(items, member_ids, strict=True):
            mine = [i for i in v.idents if i in guests]
            if mine:
                identity.link_guest_activity(session, member_id=mid, identifiers=mine, now=now)


def _write_events(
    uow: UnitOfWork,
    kind: str,
    valid: list[Valid],
    who: Principal,
    report: ImportReport,
    progress: Progress,
    region: str,
) -> None:
    for chunk in _chunks(valid, 1_000):
        _tie_to_members(uow, chunk)
        result = ingest.record_events(
            uow, batch=[v.model for v in chunk], principal=who, region=region
        )
        report.created += result.accepted
        report.unchanged += result.duplicates
        progress(len(chunk))


def _write_orders(
    uow: UnitOfWork,
    kind: str,
    valid: list[Valid],
    who: Principal,
    report: ImportReport,
    progress: Progress,
    region: str,
) -> None:
    for chunk in _chunks(valid, CHUNK):
        _tie_to_members(uow, chunk)

        def run(session: Session, chunk: list[Valid] = chunk) -> tuple[int, int, int]:
            return _orders_chunk(session, chunk, who)

        created, unchanged, fast = uow.run(run)
        report.created += created
        report.unchanged += unchanged
        report.bulk += fast
        progress(sum(len(v.record.rows) for v in chunk))


def _tie_to_members(uow: UnitOfWork, chunk: list[Valid]) -> None:
    """Give exported orders and events back to the member their MEMBER_REF names."""
    refs = [v.member_ref for v in chunk if v.member_ref is not None]
    if not refs:
        return
    with uow.read() as session:
        named = members.members_named_by(session, refs)
    for v in chunk:
        if v.member_ref is not None and v.model.member_id is None:
            v.model.member_id = named.get(v.member_ref)


def _orders_chunk(session: Session, chunk: list[Valid], who: Principal) -> tuple[int, int, int]:
    now = clock.now()
    keys = [(v.model.channel.value, v.model.external_id) for v in chunk]
    held = {
        (c, e)
        for c, e in session.execute(
            select(Order.channel, Order.external_id).where(
                keys_in((Order.channel, Order.external_id), keys)
            )
        )
    }
    todo = [v for v in chunk if (v.model.channel.value, v.model.external_id) not in held]
    named = members.members_named_by(session, [i for v in todo for i in v.idents])
    refs = members.members_named_by(session, [v.member_ref for v in todo if v.member_ref])
    fast: list[tuple[Valid, int | None]] = []
    slow: list[Valid] = []
    active = set(named.values()) | {r for r in refs.values() if r is not None}
    for v in todo:
        owners = {named.get(i) for i in v.idents}
        tied = v.model.member_id
        if tied is None and len(owners) <= 1:
            fast.append((v, next(iter(owners), None)))  # all known to one member, or all unknown
        elif tied in active and owners <= {tied}:
            fast.append((v, tied))  # tied by its export's member reference; nothing new
        else:
            slow.append(v)  # identity work to do: the use case decides, as for POST /orders
    _append_orders(session, fast, now)
    for v in slow:
        try:
            ingest.record_order_in(
                session, order=v.model, idents=v.idents, digest=v.digest, principal=who, now=now
            )
        except DomainError as exc:
            row, column = v.record.locate(tuple(_loc(exc.field)))
            raise ImportRefused(
                "the database refused an order; earlier chunks are written, and importing the "
                "file again after fixing this row resumes where it stopped",
                [RowError(row, column, exc.message)],
            ) from None
    return len(todo), len(chunk) - len(todo), len(fast)


def _append_orders(session: Session, items: list[tuple[Valid, int | None]], now: datetime) -> None:
    if not items:
        return
    conn = session.connection()
    stores: dict[str, int] = {c: i for c, i in session.execute(select(Store.code, Store.id))}
    skus = {li.sku for v, _ in items for li in v.model.lines}
    catalogue = {
        sku: (pid, name, category)
        for sku, pid, name, category in session.execute(
            select(Product.sku, Product.id, Product.name, Product.category).where(
                Product.sku.in_(skus)
            )
        )
    }
    order_ids = bulk.take_ids(conn, Order.__table__, len(items))  # type: ignore[arg-type]
    n_lines = sum(len(v.model.lines) for v, _ in items)
    line_ids = iter(bulk.take_ids(conn, OrderLine.__table__, n_lines))  # type: ignore[arg-type]
    n_contacts = sum(len(dict.fromkeys(v.idents)) for v, _ in items)
    contact_ids = iter(bulk.take_ids(conn, OrderContact.__table__, n_contacts))  # type: ignore[arg-type]
    orders, lines, contacts = [], [], []
    counted: set[int] = set()
    for (v, member_id), oid in zip(items, order_ids, strict=True):
        m: OrderIn = v.model
        orders.append({
            "id": oid, "channel": m.channel.value, "external_id": m.external_id,
            "payload_hash": v.digest, "member_id": member_id,
            "store_id": stores[m.store] if m.store else None,
            "fulfilment": m.fulfilment.value if m.fulfilment else None, "status": m.status.value,
            "ordered_at": m.ordered_at, "currency": m.currency, "subtotal": _cents(m.subtotal),
            "discount_total": _cents(m.discount_total), "shipping_fee": _cents(m.shipping_fee),
            "total": _cents(m.total), "refunded_total": 0, "created_at": now,
        })  # fmt: skip
        for n, li in enumerate(m.lines, start=1):
            pid, pname, pcat = catalogue.get(li.sku, (None, None, None))
            lines.append({
                "id": next(line_ids), "order_id": oid, "line_no": n, "sku": li.sku,
                "product_id": pid, "name": li.name or pname, "category": li.category or pcat,
                "quantity": li.quantity, "unit_price": _cents(li.unit_price),
                "discount": _cents(li.discount),
                "line_total": _cents(li.unit_price * li.quantity - li.discount),
            })  # fmt: skip
        for ident in dict.fromkeys(v.idents):
            contacts.append({
                "id": next(contact_ids), "order_id": oid, "kind": ident.kind.value,
                "namespace": ident.namespace, "value": ident.value,
            })  # fmt: skip
        if member_id is not None:
            counted.add(member_id)
    bulk.append(conn, Order.__table__, orders)  # type: ignore[arg-type]
    bulk.append(conn, OrderLine.__table__, lines)  # type: ignore[arg-type]
    bulk.append(conn, OrderContact.__table__, contacts)  # type: ignore[arg-type]
    commerce.rebuild_stats(session, now=now, member_ids=sorted(counted))


def _cents(value: Any) -> int:
    return int(value * 100)


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for n in range(0, len(items), size):
        yield list(items[n : n + size])
