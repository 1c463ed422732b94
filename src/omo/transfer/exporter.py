"""`omo export`: the brand's data out, as Parquet or CSV, in the columns `omo import` reads back.

members: the single customer view — profile, every identifier, consents and purchase stats (the
stats and ids are export-only columns that import ignores); erased members are left out, since
nothing is left to name them by and the import refuses a row without identifiers. orders: one
row per line with the identifiers the order came with; events: one row per event; points: every
lot with points left, as an opening balance; tiers: every member above the base level, held
through their review day; coupons: every member-bound or bearer coupon still usable (shared
codes are the templates' own). Money is written as exact decimal text, times as UTC. Rows stream
out in batches, so exports of millions stay in bounded memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import KeyedColumnElement

from omo.commerce.models import MemberStats, Order, OrderContact, OrderLine, Product, Store
from omo.coupons.models import Coupon, CouponTemplateRow
from omo.coupons.rules import CouponTemplate
from omo.events.models import Event
from omo.members.models import Consent, Member, MemberIdentifier
from omo.points.models import PointsEntry
from omo.shared import clock
from omo.shared.files import written_whole
from omo.tiers.models import MemberTier
from omo.tiers.service import programme_in_force
from omo.transfer.formats import UnreadableFile, write_csv
from omo.transfer.shapes import (
    COUPON_COLUMNS,
    EVENT_COLUMNS,
    IDENTIFIER_COLUMNS,
    LINE_COLUMNS,
    MEMBER_COLUMNS,
    MEMBER_EXPORT_ONLY,
    MEMBER_REF,
    NAMESPACED,
    ORDER_COLUMNS,
    POINTS_COLUMNS,
    PRODUCT_COLUMNS,
    STORE_COLUMNS,
    TIER_COLUMNS,
)

EXPORTS = ("stores", "products", "members", "orders", "events", "points", "tiers", "coupons")


def _by_ref(columns: tuple[str, ...]) -> list[str]:
    """A lot, a level or a coupon names its member as orders and events do (MEMBER_REF), not
    by id or identifiers."""
    return [*[c for c in columns if c != "member_id" and c not in IDENTIFIER_COLUMNS], MEMBER_REF]


BATCH = 20_000


def export(engine: sa.Engine, kind: str, path: Path) -> int:
    """Write every row of `kind` to path (.parquet or .csv); returns the rows written."""
    if kind not in EXPORTS:
        raise UnreadableFile(f"unknown kind {kind!r}; expected one of {', '.join(EXPORTS)}")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise UnreadableFile(f"export to .parquet or .csv, not {suffix or 'a file with no suffix'}")
    columns, batches = {
        "stores": (list(STORE_COLUMNS), _stores),
        "products": (list(PRODUCT_COLUMNS), _products),
        "members": ([*MEMBER_EXPORT_ONLY, *MEMBER_COLUMNS], _members),
        "orders": (
            [*[c for c in ORDER_COLUMNS if c != "member_id"], *LINE_COLUMNS, MEMBER_REF],
            _orders,
        ),
        "events": ([*[c for c in EVENT_COLUMNS if c != "member_id"], MEMBER_REF], _events),
        "points": (_by_ref(POINTS_COLUMNS), _points),
        "tiers": (_by_ref(TIER_COLUMNS), _tiers),
        "coupons": (_by_ref(COUPON_COLUMNS), _coupons),
    }[kind]
    n = 0
    try:
        with engine.connect() as conn, written_whole(path) as part:
            if suffix == ".csv":

                def rows() -> Iterator[list[Any]]:
                    nonlocal n
                    for batch in batches(conn):
                        for row in batch:
                            n += 1
                            yield [_text(row.get(c)) for c in columns]

                write_csv(part, columns, rows())
                return n
            schema = pa.schema([(c, pa.string()) for c in columns])
            with pq.ParquetWriter(part, schema) as out:
                for batch in batches(conn):
                    table = {c: [_text(r.get(c)) for r in batch] for c in columns}
                    out.write_table(pa.table(table, schema=schema))
                    n += len(batch)
    except OSError as exc:
        raise UnreadableFile(f"cannot write {path}: {exc.strerror or exc}") from None
    return n


def _text(value: Any) -> str | None:
    """Exact text for every value: decimals as written, times as ISO 8601 UTC."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _stores(conn: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    t = Store.__table__
    rows = conn.execute(sa.select(t).order_by(t.c.code)).mappings()
    yield [{c: r[c] for c in STORE_COLUMNS} for r in rows]


def _products(conn: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    t = Product.__table__
    rows = conn.execute(sa.select(t).order_by(t.c.sku)).mappings()
    yield [{c: r[c] for c in PRODUCT_COLUMNS} for r in rows]


def _members(conn: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    stores: dict[int, str] = {i: c for i, c in conn.execute(sa.select(Store.id, Store.code))}
    last = 0
    while True:
        ms = (
            conn.execute(
                sa.select(Member.__table__)
                .where(Member.id > last, Member.status == "active", Member.erased_at.is_(None))
                .order_by(Member.id)
                .limit(BATCH)
            )
            .mappings()
            .all()
        )
        if not ms:
            return
        ids = [m["id"] for m in ms]
        last = ids[-1]
        idents: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for mid, kind, ns, value in conn.execute(
            sa.select(
                MemberIdentifier.member_id,
                MemberIdentifier.kind,
                MemberIdentifier.namespace,
                MemberIdentifier.value,
            )
            .where(MemberIdentifier.member_id.in_(ids))
            .order_by(MemberIdentifier.id)
        ):
            idents[mid][kind].append(f"{ns}:{value}" if kind in NAMESPACED else value)
        consents: dict[int, dict[str, bool]] = defaultdict(dict)
        for mid, channel, granted in conn.execute(
            sa.select(Consent.member_id, Consent.channel, Consent.granted).where(
                Consent.member_id.in_(ids)
            )
        ):
            consents[mid][channel] = granted
        stats = {
            s.member_id: s
            for s in conn.execute(
                sa.select(MemberStats.__table__).where(MemberStats.member_id.in_(ids))
            )
        }
        batch = []
        for m in ms:
            row: dict[str, Any] = {c: m.get(c) for c in MEMBER_COLUMNS if c in m}
            row["member_id"] = m["id"]
            row["join_store"] = stores.get(m["join_store_id"])
            for kind in IDENTIFIER_COLUMNS:
                values = idents[m["id"]].get(kind)
                row[kind] = "|".join(values) if values else None
            for channel, granted in consents[m["id"]].items():
                row[f"consent_{channel}"] = granted
            s = stats.get(m["id"])
            if s is not None:
                row.update(
                    order_count=s.order_count,
                    total_spend=s.total_spend,
                    online_spend=s.online_spend,
                    offline_spend=s.offline_spend,
                    first_order_at=s.first_order_at,
                    last_order_at=s.last_order_at,
                )
            batch.append(row)
        yield batch


def _orders(conn: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    stores: dict[int, str] = {i: c for i, c in conn.execute(sa.select(Store.id, Store.code))}
    last = 0
    while True:
        orders = (
            conn.execute(
                sa.select(Order.__table__)
                .where(Order.id > last)
                .order_by(Order.id)
                .limit(BATCH // 2)
            )
            .mappings()
            .all()
        )
        if not orders:
            return
        ids = [o["id"] for o in orders]
        last = ids[-1]
        refs = _member_refs(conn, {o["member_id"] for o in orders})
        lines: dict[int, list[Any]] = defaultdict(list)
        for li in conn.execute(
            sa.select(OrderLine.__table__)
            .where(OrderLine.order_id.in_(ids))
            .order_by(OrderLine.order_id, OrderLine.line_no)
        ).mappings():
            lines[li["order_id"]].append(li)
        contacts: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for oid, kind, ns, value in conn.execute(
            sa.select(
                OrderContact.order_id, OrderContact.kind, OrderContact.namespace, OrderContact.value
            )
            .where(OrderContact.order_id.in_(ids))
            .order_by(OrderContact.id)
        ):
            contacts[oid][kind].append(f"{ns}:{value}" if kind in NAMESPACED else value)
        batch = []
        for o in orders:
            head: dict[str, Any] = {
                "channel": o["channel"],
                "external_id": o["external_id"],
                "ordered_at": o["ordered_at"],
                "store": stores.get(o["store_id"]),
                "fulfilment": o["fulfilment"],
                "status": o["status"],
                "currency": o["currency"],
                "discount_total": o["discount_total"],
                "shipping_fee": o["shipping_fee"],
                "total": o["total"],
            }
            for kind in IDENTIFIER_COLUMNS:
                values = contacts[o["id"]].get(kind)
                head[kind] = "|".join(values) if values else None
            head[MEMBER_REF] = refs.get(o["member_id"])
            for li in lines[o["id"]]:
                batch.append({
                    **head, "sku": li["sku"], "name": li["name"], "category": li["category"],
                    "quantity": li["quantity"], "unit_price": li["unit_price"],
                    "discount": li["discount"],
                })  # fmt: skip
        yield batch


def _events(conn: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    stores: dict[int, str] = {i: c for i, c in conn.execute(sa.select(Store.id, Store.code))}
    last = 0
    while True:
        evs = (
            conn.execute(
                sa.select(Event.__table__).where(Event.id > last).order_by(Event.id).limit(BATCH)
            )
            .mappings()
            .all()
        )
        if not evs:
            return
        last = evs[-1]["id"]
        refs = _member_refs(conn, {e["member_id"] for e in evs})
        batch = []
        for e in evs:
            row = {c: e.get(c) for c in EVENT_COLUMNS if c in e and c != "member_id"}
            row["occurred_at"] = e["occurred_at"]
            row["store"] = stores.get(e["store_id"])
            row[MEMBER_REF] = refs.get(e["member_id"])
            if e["contact_kind"]:
                ns, value = e["contact_namespace"], e["contact_value"]
                row[e["contact_kind"]] = (
                    f"{ns}:{value}" if e["contact_kind"] in NAMESPACED else value
                )
            batch.append(row)
        yield batch


def _points(conn: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    """Every lot with points left and not yet expired, as an opening balance: moved into
    another database, what expires when, and what is still pending, carry over. An erased
    member's lots stay behind: no identifier is left to name them by elsewhere (the members
    export leaves them out too)."""
    t = PointsEntry.__table__
    now = clock.now()
    lots = sa.select(t.c.id, t.c.member_id, t.c.remaining, t.c.created_at, t.c.available_at,
                     t.c.expires_at, t.c.reason).where(
        t.c.remaining > 0, sa.or_(t.c.expires_at.is_(None), t.c.expires_at > now))  # fmt: skip
    for batch, refs in _paged(conn, lots, t.c.id):
        yield [_lot_row(lot, refs[lot.member_id]) for lot in batch if lot.member_id in refs]


def _lot_row(lot: Any, member: str | None) -> dict[str, Any]:
    return {
        "reference": f"omo-lot-{lot.id}", "points": lot.remaining, "earned_at": lot.created_at,
        "available_at": lot.available_at, "expires_at": lot.expires_at, "reason": lot.reason,
        MEMBER_REF: member,
    }  # fmt: skip


def _tiers(conn: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    """Every active member above the base level, held through the day before their review (or
    today, when the review is due): imported elsewhere, each holds the level as long, and is
    then reviewed there by that programme's rules. Erased members stay behind, as in `_points`."""
    with Session(bind=conn) as session:
        p = programme_in_force(session)
    zone = ZoneInfo(p.timezone)
    today = clock.now().astimezone(zone).date()
    t, m = MemberTier.__table__, Member.__table__
    held = (
        sa.select(t.c.member_id, t.c.level, t.c.since, t.c.review_at)
        .join(m, m.c.id == t.c.member_id)
        .where(t.c.level != p.levels[0].code, m.c.status == "active")
    )

    def day(at: datetime) -> date:
        return clock.as_utc(at).astimezone(zone).date()

    for batch, refs in _paged(conn, held, t.c.member_id):
        yield [
            {"level": h.level, "reason": f"held since {day(h.since)}",
             "until": max(today, day(h.review_at - timedelta(days=1))),
             MEMBER_REF: refs[h.member_id]}
            for h in batch if h.member_id in refs
        ]  # fmt: skip


def _coupons(conn: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    """Every coupon still usable: not void, not used up, not expired. Left out: a shared code
    (it is its template's, made again there), and a coupon of a member with no identifier left
    to name them by (erased): without its member it would be read back as a bearer code."""
    tpl = CouponTemplateRow.__table__
    templates = conn.execute(sa.select(tpl.c.id, tpl.c.code, tpl.c.definition)).all()
    codes = {i: code for i, code, _d in templates}
    shared = {i for i, _c, d in templates if CouponTemplate.model_validate(d).shared_code}
    t = Coupon.__table__
    now = clock.now()
    usable = sa.select(t.c.id, t.c.code, t.c.template_id, t.c.member_id, t.c.valid_from,
                       t.c.valid_until).where(
        t.c.status == "active", t.c.uses < t.c.max_uses,
        sa.or_(t.c.valid_until.is_(None), t.c.valid_until > now))  # fmt: skip
    for batch, refs in _paged(conn, usable, t.c.id):
        yield [
            {"code": c.code, "template": codes[c.template_id], "valid_from": c.valid_from,
             "valid_until": c.valid_until, MEMBER_REF: refs.get(c.member_id)}
            for c in batch
            if c.template_id not in shared and (c.member_id is None or c.member_id in refs)
        ]  # fmt: skip


def _paged(
    conn: sa.Connection, stmt: sa.Select[Any], key: KeyedColumnElement[Any]
) -> Iterator[tuple[list[Any], dict[int, str]]]:
    """`stmt`'s rows in batches of BATCH by `key` (an id it selects), each batch with its
    members' references."""
    last = 0
    while True:
        rows = list(conn.execute(stmt.where(key > last).order_by(key).limit(BATCH)))
        if not rows:
            return
        last = getattr(rows[-1], str(key.key))
        yield rows, _member_refs(conn, {r.member_id for r in rows})


def _member_refs(conn: sa.Connection, member_ids: set[int | None]) -> dict[int, str]:
    """One identifier per member ("kind:namespace:value"), the one it has held longest."""
    wanted = [m for m in member_ids if m is not None]
    refs: dict[int, str] = {}
    if not wanted:
        return refs
    t = MemberIdentifier
    rows = conn.execute(
        sa.select(t.member_id, t.kind, t.namespace, t.value)
        .where(t.member_id.in_(wanted))
        .order_by(t.member_id, t.id)
    )
    for mid, kind, ns, value in rows:
        refs.setdefault(mid, f"{kind}:{ns}:{value}")
    return refs
