"""Import, step 2: writing validated records, in bulk where identity needs no decision."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.commerce import service as commerce
from omo.commerce.models import MemberStats, Order, OrderContact, OrderLine, Product, Store
from omo.coupons import imported
from omo.db import UnitOfWork, is_retryable
from omo.events import service as events
from omo.identity import service as identity
from omo.ingest import bulk
from omo.ingest import service as ingest
from omo.members import service as members
from omo.members.identifiers import Identifier
from omo.members.models import Consent, Member, MemberIdentifier
from omo.members.schemas import MemberUpsert
from omo.points import openings
from omo.shared import clock
from omo.shared.errors import DomainError
from omo.shared.sqlmatch import keys_in
from omo.tiers import grants
from omo.transfer.orderfacts import OrderFacts, order_in
from omo.transfer.results import (
    ImportRefused,
    ImportReport,
    Progress,
    Valid,
    chunks,
    field_path,
)
from omo.transfer.shapes import RowError

CHUNK = 2_000
Writer = Callable[[UnitOfWork, str, list[Valid], Principal, ImportReport, Progress, str], None]


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
    for chunk in chunks(valid, CHUNK):

        def run(session: Session, chunk: list[Valid] = chunk) -> list[tuple[bool, bool]]:
            return _members_chunk(session, chunk, who, shared)

        for created, changed in uow.run(run):
            _count(report, created, changed)
        progress(sum(len(v.rows) for v in chunk))


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
    for chunk in chunks(valid, 1_000):
        _tie_to_members(uow, chunk)
        result = ingest.record_events(  # history: a review imported earns no bonus
            uow, batch=[v.model for v in chunk], principal=who, region=region, live=False
        )
        report.created += result.accepted
        report.unchanged += result.duplicates
        progress(len(chunk))


def _per_member(write: Callable[..., tuple[int, int]], size: int) -> Writer:
    """What members bring from the programme before (balances, levels): `size` rows a
    transaction, each for the member validation found; `write` says how many it created and
    how many were there already."""

    def run(uow: UnitOfWork, kind: str, valid: list[Valid], who: Principal,
            report: ImportReport, progress: Progress, region: str) -> None:  # fmt: skip
        for chunk in chunks(valid, size):
            created, unchanged = write(
                uow, items=[(v.model.member_id, v.model) for v in chunk], actor=who.name
            )
            report.created += created
            report.unchanged += unchanged
            progress(len(chunk))

    return run


def _write_orders(
    uow: UnitOfWork,
    kind: str,
    valid: list[Valid],
    who: Principal,
    report: ImportReport,
    progress: Progress,
    region: str,
) -> None:
    for chunk in chunks(valid, CHUNK):
        _tie_to_members(uow, chunk)
        tries = 0

        def run(session: Session, chunk: list[Valid] = chunk) -> tuple[int, int, int]:
            nonlocal tries
            tries += 1
            return _orders_chunk(session, chunk, who, ask_database=tries > 1)

        created, unchanged, fast = uow.run(run)
        report.created += created
        report.unchanged += unchanged
        report.bulk += fast
        progress(sum(len(v.rows) for v in chunk))


# A file's orders are written as their runs are validated (orderfacts.OrderRuns), in one
# transaction left open until the whole file is valid: this process validates the first run
# and then writes every run, while the children validate the others. The first run's share
# of the rows balances the two: writing an order costs less than validating it on SQLite
# (executemany 0.45 s against 0.9 s of validation for 20,000 orders on these machines), more
# on PostgreSQL (COPY 1.1 s), where this process is kept writing from early on.
EARLY_SHARE = {"sqlite": 0.12, "postgresql": 0.1}
EARLY_PIECE_ROWS = 5_000  # the children's runs: small, so that writing starts soon
# SQLite has one writer: the open transaction keeps the tills waiting until the file is
# validated, so only a file this small (about a second of validation on a 2-core machine) is
# written as it is validated; a bigger one is written after, 2,000 orders a transaction
EARLY_ROWS_SQLITE = 60_000


def early_share(dialect: str, rows: int) -> float | None:
    """The first run's share of the rows when a file's orders are written as they are
    validated, or None when they are written after."""
    share = EARLY_SHARE.get(dialect)
    if share is None or (dialect == "sqlite" and rows > EARLY_ROWS_SQLITE):
        return None
    return share


class EarlyOrders:
    """Orders written while the rest of the file is still being validated, in one transaction
    left open until it is: committed with the file, or rolled back when the file is refused,
    so that nothing of a refused file is ever committed. When a write here loses a race with
    another writer, everything is undone and left to be written after (`written` is empty)."""

    def __init__(self, uow: UnitOfWork, who: Principal, progress: Progress) -> None:
        self.created = self.unchanged = self.bulk = self.rows = 0
        self.written: set[int] = set()  # id() of each Valid written
        self.lost = False  # to a race: nothing more is written here
        self.deferred = _Deferred()
        self._uow, self._who, self._progress = uow, who, progress
        self._open: AbstractContextManager[Session] | None = None
        self._session: Session | None = None

    def add(self, valid: list[Valid]) -> None:
        if self.lost or not valid:
            return
        try:
            if self._session is None:
                self._open = self._uow.write()
                self._session = self._open.__enter__()
            for chunk in chunks(valid, CHUNK):
                _tie_to_members(self._uow, chunk)
                created, unchanged, fast = _orders_chunk(
                    self._session, chunk, self._who, ask_database=False, deferred=self.deferred
                )
                self.created, self.unchanged = self.created + created, self.unchanged + unchanged
                self.bulk += fast
        except (IntegrityError, OperationalError) as exc:
            self._close(exc)
            if not is_retryable(exc):
                raise
            self.lost = True
            self.written = set()
            self.deferred = _Deferred()
            self._progress(-self.rows)  # they will be counted when written after
            self.created = self.unchanged = self.bulk = self.rows = 0
            return
        except BaseException as exc:
            self._close(exc)
            raise
        slow = {id(v) for v in self.deferred.slow}
        done = [v for v in valid if id(v) not in slow]
        self.written.update(id(v) for v in done)
        rows = sum(len(v.rows) for v in done)
        self.rows += rows
        self._progress(rows)  # shown as written (a refused file rolls back whatever it showed)

    def commit(self, report: ImportReport) -> None:
        """The members' stats rebuilt, and the write committed; the orders left for the
        identity use case (not in `written`) are for the caller to write after."""
        if self._open is None:
            return
        try:
            if self._session is not None and self.deferred.counted:
                commerce.rebuild_stats(
                    self._session, now=clock.now(), member_ids=sorted(self.deferred.counted)
                )
        except BaseException as exc:
            self._close(exc)
            raise
        self._close(None)
        report.created += self.created
        report.unchanged += self.unchanged
        report.bulk += self.bulk

    def rollback(self) -> None:
        if self._open is not None:
            self._close(ImportRefused("rolled back"))
        self.written = set()

    def _close(self, exc: BaseException | None) -> None:
        opened, self._open, self._session = self._open, None, None
        if opened is not None:
            opened.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)


def _tie_to_members(uow: UnitOfWork, chunk: list[Valid]) -> None:
    """Give exported orders and events back to the member their MEMBER_REF names."""
    refs = [v.member_ref for v in chunk if v.member_ref is not None]
    if not refs:
        return
    with uow.read() as session:
        named = members.members_named_by(session, refs)
    for v in chunk:
        if v.member_ref is not None and v.model.member_id is None:
            v.model.member_id = named.get(v.member_ref)  # an OrderFacts or an EventIn


@dataclass
class _Deferred:
    """What a write left open until the file is validated leaves to its end: the stats of the
    members its orders belong to (rebuilt just before the commit) and the orders that need the
    identity use case (written after it, in transactions of their own). Either would otherwise
    hold those members' rows locked, on PostgreSQL, for as long as the file takes to validate,
    and a till selling to one of them would wait that long."""

    counted: set[int] = field(default_factory=set)
    slow: list[Valid] = field(default_factory=list)


def _orders_chunk(
    session: Session,
    chunk: list[Valid],
    who: Principal,
    *,
    ask_database: bool,
    deferred: _Deferred | None = None,
) -> tuple[int, int, int]:
    """The chunk's new orders written; returns how many were written, how many the database
    held already and how many took the bulk path. Which orders the database holds already was
    checked with the file (`Valid.recorded`); an order another writer recorded since makes an
    insert fail on the order id's unique key, and the retry (`ask_database`) asks the database.
    `deferred`: the stats and the identity use case are left to the caller (_Deferred)."""
    now = clock.now()
    if ask_database:
        keys = [v.model.key for v in chunk]
        held = {
            (c, e)
            for c, e in session.execute(
                select(Order.channel, Order.external_id).where(
                    keys_in((Order.channel, Order.external_id), keys)
                )
            )
        }
        todo = [v for v in chunk if v.model.key not in held]
    else:
        todo = [v for v in chunk if not v.recorded]
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
    _append_orders(session, fast, now, None if deferred is None else deferred.counted)
    written = len(todo)
    if deferred is not None:
        deferred.slow.extend(slow)
        written, slow = written - len(slow), []
    for v in slow:
        try:
            ingest.record_order_in(
                session, order=order_in(v), idents=v.idents, digest=v.digest, principal=who,
                now=now,
            )  # fmt: skip
        except DomainError as exc:
            row, column = v.record.locate(tuple(field_path(exc.field)))
            raise ImportRefused(
                "the database refused an order; orders committed before it stay (none when "
                "the file was written as it was validated), and importing the file again "
                "after fixing this row resumes where it stopped",
                [RowError(row, column, exc.message)],
            ) from None
    return written, len(chunk) - len(todo), len(fast)


ORDER_COLUMNS = (
    "id", "channel", "external_id", "payload_hash", "member_id", "store_id", "fulfilment",
    "status", "ordered_at", "currency", "subtotal", "discount_total", "shipping_fee", "total",
    "refunded_total", "created_at",
)  # fmt: skip
# lines and contacts take their ids from the database: nothing refers to them here
LINE_COLUMNS = (
    "order_id", "line_no", "sku", "product_id", "name", "category", "quantity",
    "unit_price", "discount", "line_total",
)  # fmt: skip
CONTACT_COLUMNS = ("order_id", "kind", "namespace", "value")


def _append_orders(
    session: Session,
    items: list[tuple[Valid, int | None]],
    now: datetime,
    counted: set[int] | None = None,
) -> None:
    """The orders appended in bulk, and their members' stats rebuilt — or, with `counted`, the
    members added to it for the caller to rebuild."""
    if not items:
        return
    conn = session.connection()
    stores: dict[str, int] = {c: i for c, i in session.execute(select(Store.code, Store.id))}
    skus = {li[0] for v, _ in items for li in v.model.lines}
    catalogue = {
        sku: (pid, name, category)
        for sku, pid, name, category in session.execute(
            select(Product.sku, Product.id, Product.name, Product.category).where(
                Product.sku.in_(skus)
            )
        )
    }
    order_ids = bulk.take_ids(conn, Order.__table__, len(items))  # type: ignore[arg-type]
    orders: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    contacts: list[tuple[Any, ...]] = []
    members_of: set[int] = set()
    none = (None, None, None)
    for (v, member_id), oid in zip(items, order_ids, strict=True):
        m: OrderFacts = v.model
        orders.append((
            oid, m.channel, m.external_id, v.digest, member_id,
            stores[m.store] if m.store else None, m.fulfilment, m.status, m.ordered_at,
            m.currency, m.subtotal, m.discount_total, m.shipping_fee, m.total, 0, now,
        ))  # fmt: skip
        for n, (sku, name, category, quantity, price, discount, total) in enumerate(m.lines, 1):
            pid, pname, pcat = catalogue.get(sku, none)
            lines.append((
                oid, n, sku, pid, name or pname, category or pcat, quantity,
                price, discount, total,
            ))  # fmt: skip
        for ident in v.idents:  # distinct: normalise_all keeps each identifier once
            contacts.append((oid, ident.kind.value, ident.namespace, ident.value))
        if member_id is not None:
            members_of.add(member_id)
    bulk.append_tuples(conn, Order.__table__, ORDER_COLUMNS, orders)  # type: ignore[arg-type]
    bulk.append_tuples(conn, OrderLine.__table__, LINE_COLUMNS, lines)  # type: ignore[arg-type]
    bulk.append_tuples(conn, OrderContact.__table__, CONTACT_COLUMNS, contacts)  # type: ignore[arg-type]
    if counted is None:
        commerce.rebuild_stats(session, now=now, member_ids=sorted(members_of))
    else:
        counted |= members_of


WRITERS: dict[str, Writer] = {
    "stores": _write_catalogue,
    "products": _write_catalogue,
    "members": _write_members,
    "orders": _write_orders,
    "events": _write_events,
    "points": _per_member(openings.open_balances, 1_000),
    "tiers": _per_member(grants.grant_many, 500),
    "coupons": _per_member(imported.import_coupons, 1_000),
}
