"""Use cases of the commerce area: catalogue, orders and per-member purchase stats.

Functions take the caller's session; the orchestrator that calls them owns the transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from omo.commerce.channels import COUNTED_STATUSES, is_online
from omo.commerce.models import (
    MemberStats,
    Order,
    OrderContact,
    OrderLine,
    OrderRefund,
    Product,
    Store,
)
from omo.commerce.schemas import (
    OrderIn,
    OrderLineRead,
    OrderRead,
    OrderResult,
    ProductRead,
    ProductUpsert,
    StoreRead,
    StoreUpsert,
)
from omo.db import UnitOfWork
from omo.members.identifiers import Identifier
from omo.members.models import Member
from omo.shared.errors import NotFound
from omo.shared.money import ZERO
from omo.shared.sqlmatch import keys_in
from omo.shared.sqltypes import Money, UtcDateTime

# --- catalogue --------------------------------------------------------------------------------


def upsert_store(session: Session, *, code: str, data: StoreUpsert) -> tuple[Store, bool]:
    store = session.scalar(select(Store).where(Store.code == code))
    created = store is None
    if store is None:
        store = Store(code=code)
        session.add(store)
    for field, value in data.model_dump().items():
        setattr(store, field, value)
    session.flush()
    return store, created


def upsert_product(session: Session, *, sku: str, data: ProductUpsert) -> tuple[Product, bool]:
    product = session.scalar(select(Product).where(Product.sku == sku))
    created = product is None
    if product is None:
        product = Product(sku=sku)
        session.add(product)
    for field, value in data.model_dump().items():
        setattr(product, field, value)
    session.flush()
    return product, created


def catalogue_for(session: Session, skus: Iterable[str]) -> dict[str, Product]:
    wanted = sorted(set(skus))
    return {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(wanted)))}


def store_by_code(session: Session, code: str, *, field: str = "store") -> Store:
    store = session.scalar(select(Store).where(Store.code == code))
    if store is None:
        raise NotFound(f"no store with code {code!r}", field=field)
    return store


def list_stores(session: Session) -> list[Store]:
    return list(session.scalars(select(Store).order_by(Store.code)))


def list_products(
    session: Session, *, category: str | None, limit: int, offset: int
) -> list[Product]:
    stmt = select(Product).order_by(Product.sku).limit(limit).offset(offset)
    if category:
        stmt = stmt.where(Product.category == category)
    return list(session.scalars(stmt))


# --- orders -----------------------------------------------------------------------------------


def payload_hash(order: OrderIn) -> str:
    body = order.model_dump_json(exclude={"member_id"}).encode()
    return hashlib.sha256(body).hexdigest()


def find_order(session: Session, *, channel: str, external_id: str) -> Order | None:
    return session.scalar(
        select(Order).where(Order.channel == channel, Order.external_id == external_id)
    )


def record_order(
    session: Session,
    *,
    order: OrderIn,
    member_id: int | None,
    store_id: int | None,
    contacts: Iterable[Identifier],
    digest: str,
    now: datetime,
) -> Order:
    """Write the order, its lines and contacts, and fold it into the member's stats.

    `digest` is what a retry is compared with: payload_hash(order) for orders that come in as
    they are, the hash of the checkout request for sales priced by checkout."""
    # both are set by OrderIn's validator
    assert order.fulfilment is not None
    assert order.total is not None
    row = Order(
        channel=order.channel.value,
        external_id=order.external_id,
        payload_hash=digest,
        member_id=member_id,
        store_id=store_id,
        fulfilment=order.fulfilment.value,
        status=order.status.value,
        ordered_at=order.ordered_at,
        currency=order.currency,
        subtotal=order.subtotal,
        discount_total=order.discount_total,
        shipping_fee=order.shipping_fee,
        total=order.total,
        created_at=now,
    )
    session.add(row)
    session.flush()
    skus = {li.sku for li in order.lines}
    catalogue = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(skus)))}
    for n, line in enumerate(order.lines, start=1):
        product = catalogue.get(line.sku)
        session.add(
            OrderLine(
                order_id=row.id,
                line_no=n,
                sku=line.sku,
                product_id=product.id if product else None,
                name=line.name or (product.name if product else None),
                category=line.category or (product.category if product else None),
                quantity=line.quantity,
                unit_price=line.unit_price,
                discount=line.discount,
                line_total=line.unit_price * line.quantity - line.discount,
            )
        )
    for ident in dict.fromkeys(contacts):
        session.add(
            OrderContact(
                order_id=row.id, kind=ident.kind.value, namespace=ident.namespace, value=ident.value
            )
        )
    session.flush()
    if member_id is not None and row.status in COUNTED_STATUSES:
        add_to_stats(session, member_id=member_id, orders=[row], now=now)
    return row


def order_result(session: Session, row: Order, *, replayed: bool) -> OrderResult:
    lines = [OrderLineRead.model_validate(li) for li in order_lines(session, row.id)]
    base = {k: getattr(row, k) for k in OrderRead.model_fields}
    return OrderResult(**base, lines=lines, replayed=replayed)


def order_lines(session: Session, order_id: int) -> list[OrderLine]:
    return list(
        session.scalars(
            select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no)
        )
    )


def recent_orders(session: Session, *, member_id: int, limit: int) -> list[Order]:
    return list(
        session.scalars(
            select(Order)
            .where(Order.member_id == member_id)
            .order_by(Order.ordered_at.desc(), Order.id.desc())
            .limit(limit)
        )
    )


def guest_orders_with(session: Session, identifiers: Iterable[Identifier]) -> list[int]:
    keys = [(i.kind.value, i.namespace, i.value) for i in identifiers]
    if not keys:
        return []
    return list(
        session.scalars(
            select(Order.id)
            .join(OrderContact, OrderContact.order_id == Order.id)
            .where(
                Order.member_id.is_(None),
                keys_in((OrderContact.kind, OrderContact.namespace, OrderContact.value), keys),
            )
            .distinct()
            .order_by(Order.id)
        )
    )


def guest_contacts_among(session: Session, identifiers: Sequence[Identifier]) -> set[Identifier]:
    """Those of the identifiers that guest orders carry (bulk enrolment links only those)."""
    found: set[Identifier] = set()
    by_key = {(i.kind.value, i.namespace, i.value): i for i in identifiers}
    keys = list(by_key)
    for n in range(0, len(keys), 500):
        rows = session.execute(
            select(OrderContact.kind, OrderContact.namespace, OrderContact.value)
            .join(Order, Order.id == OrderContact.order_id)
            .where(
                Order.member_id.is_(None),
                keys_in(
                    (OrderContact.kind, OrderContact.namespace, OrderContact.value),
                    keys[n : n + 500],
                ),
            )
            .distinct()
        )
        found.update(by_key[(k, ns, v)] for k, ns, v in rows)
    return found


def attach_guest_orders(
    session: Session, *, order_ids: Sequence[int], member_id: int, now: datetime
) -> int:
    """Give guest orders to a member who has just been identified; returns how many."""
    if not order_ids:
        return 0
    orders = list(
        session.scalars(
            select(Order).where(Order.id.in_(list(order_ids)), Order.member_id.is_(None))
        )
    )
    for o in orders:
        o.member_id = member_id
    session.flush()
    add_to_stats(
        session,
        member_id=member_id,
        orders=[o for o in orders if o.status in COUNTED_STATUSES],
        now=now,
    )
    return len(orders)


# --- stats ------------------------------------------------------------------------------------


def init_stats(session: Session, *, member_id: int) -> None:
    session.add(MemberStats(member_id=member_id))
    session.flush()


def add_to_stats(
    session: Session, *, member_id: int, orders: Sequence[Order], now: datetime
) -> None:
    """Fold orders into the stats with one atomic UPDATE, so concurrent orders add up."""
    for o in orders:
        online = is_online(o.channel)
        net = o.total - (o.refunded_total or ZERO)
        s = MemberStats
        is_latest = (s.last_order_at.is_(None)) | (s.last_order_at <= o.ordered_at)
        session.execute(
            update(s)
            .where(s.member_id == member_id)
            .values(
                order_count=s.order_count + 1,
                total_spend=s.total_spend + net,
                online_spend=s.online_spend + (net if online else ZERO),
                offline_spend=s.offline_spend + (ZERO if online else net),
                online_orders=s.online_orders + (1 if online else 0),
                offline_orders=s.offline_orders + (0 if online else 1),
                first_order_at=case(
                    (
                        (s.first_order_at.is_(None)) | (s.first_order_at > o.ordered_at),
                        o.ordered_at,
                    ),
                    else_=s.first_order_at,
                ),
                last_order_at=case((is_latest, o.ordered_at), else_=s.last_order_at),
                last_channel=case((is_latest, o.channel), else_=s.last_channel),
                last_store_id=case((is_latest, o.store_id), else_=s.last_store_id),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )


def recompute_stats(session: Session, *, member_id: int, now: datetime) -> MemberStats:
    """Rebuild a member's stats from their orders (after a merge or an undo)."""
    counted = (
        select(Order)
        .where(Order.member_id == member_id, Order.status.in_(COUNTED_STATUSES))
        .subquery()
    )
    online = counted.c.channel != "pos"
    agg = session.execute(
        select(
            func.count(),
            func.min(counted.c.ordered_at),
            func.max(counted.c.ordered_at),
            _money_sum(counted.c.total - counted.c.refunded_total),
            _money_sum(case((online, counted.c.total - counted.c.refunded_total), else_=0)),
            func.coalesce(func.sum(case((online, 1), else_=0)), 0),
        )
    ).one()
    latest = session.execute(
        select(counted.c.channel, counted.c.store_id)
        .order_by(counted.c.ordered_at.desc(), counted.c.id.desc())
        .limit(1)
    ).first()
    stats = session.get(MemberStats, member_id)
    if stats is None:
        stats = MemberStats(member_id=member_id)
        session.add(stats)
    count, first, last, total, online_total, online_orders = agg
    stats.order_count = int(count)
    stats.first_order_at = first
    stats.last_order_at = last
    stats.total_spend = total
    stats.online_spend = online_total
    stats.offline_spend = total - online_total
    stats.online_orders = int(online_orders)
    stats.offline_orders = int(count) - int(online_orders)
    stats.last_channel = latest.channel if latest else None
    stats.last_store_id = latest.store_id if latest else None
    stats.updated_at = now
    session.flush()
    return stats


def rebuild_stats(
    session: Session, *, now: datetime, member_ids: Sequence[int] | None = None
) -> None:
    """Rebuild the stats of every active member (or of these) from the orders, in set-based SQL.

    The same figures recompute_stats gives one member at a time; bulk loads use this.
    """
    if member_ids is not None:
        for n in range(0, len(member_ids), 500):
            _rebuild_stats(session, now=now, member_ids=member_ids[n : n + 500])
        return
    _rebuild_stats(session, now=now, member_ids=None)


def _rebuild_stats(session: Session, *, now: datetime, member_ids: Sequence[int] | None) -> None:
    wipe = delete(MemberStats)
    if member_ids is not None:
        wipe = wipe.where(MemberStats.member_id.in_(member_ids))
    session.execute(wipe)
    orders = select(
        Order.member_id,
        Order.channel,
        Order.store_id,
        Order.ordered_at,
        type_coerce(Order.total, BigInteger).label("cents"),
        func.row_number()
        .over(partition_by=Order.member_id, order_by=(Order.ordered_at.desc(), Order.id.desc()))
        .label("recency"),
    ).where(Order.member_id.is_not(None), Order.status.in_(COUNTED_STATUSES))
    if member_ids is not None:
        orders = orders.where(Order.member_id.in_(member_ids))
    counted = orders.subquery()
    online = counted.c.channel != "pos"
    last = case((counted.c.recency == 1, counted.c.channel))
    last_store = case((counted.c.recency == 1, counted.c.store_id))
    agg = (
        select(
            counted.c.member_id,
            func.min(counted.c.ordered_at).label("first"),
            func.max(counted.c.ordered_at).label("last"),
            func.count().label("n"),
            func.sum(counted.c.cents).label("total"),
            func.sum(case((online, counted.c.cents), else_=0)).label("online"),
            func.sum(case((online, 1), else_=0)).label("online_n"),
            func.max(last).label("last_channel"),
            func.max(last_store).label("last_store"),
        )
        .group_by(counted.c.member_id)
        .subquery()
    )
    zero = literal(0, BigInteger)
    rows = select(
        Member.id,
        agg.c.first,
        agg.c.last,
        func.coalesce(agg.c.n, 0),
        func.coalesce(agg.c.total, zero),
        func.coalesce(agg.c.online, zero),
        func.coalesce(agg.c.total - agg.c.online, zero),
        func.coalesce(agg.c.online_n, 0),
        func.coalesce(agg.c.n - agg.c.online_n, 0),
        agg.c.last_channel,
        agg.c.last_store,
        literal(now, UtcDateTime()),
    ).select_from(Member.__table__.outerjoin(agg, agg.c.member_id == Member.id))
    rows = rows.where(Member.status == "active")
    if member_ids is not None:
        rows = rows.where(Member.id.in_(member_ids))
    s = MemberStats.__table__.c
    target = [
        s.member_id, s.first_order_at, s.last_order_at, s.order_count, s.total_spend,
        s.online_spend, s.offline_spend, s.online_orders, s.offline_orders, s.last_channel,
        s.last_store_id, s.updated_at,
    ]  # fmt: skip
    session.execute(insert(MemberStats).from_select(target, rows))


def _money_sum(expr: Any) -> Any:
    """SUM of a money column, read back as Decimal (cents are summed exactly in SQL)."""
    return type_coerce(func.coalesce(func.sum(type_coerce(expr, BigInteger)), 0), Money())


def stats_of(session: Session, member_id: int) -> MemberStats | None:
    return session.get(MemberStats, member_id)


# --- merge support ----------------------------------------------------------------------------


def reassign_member(session: Session, *, from_id: int, to_id: int) -> list[int]:
    """Re-point the orders of `from_id` to `to_id`; returns the moved order ids."""
    ids = list(session.scalars(select(Order.id).where(Order.member_id == from_id)))
    if ids:
        session.execute(
            update(Order)
            .where(Order.id.in_(ids))
            .values(member_id=to_id)
            .execution_options(synchronize_session=False)
        )
    return ids


def restore_rows(session: Session, *, row_ids: Sequence[int], from_id: int, to_id: int) -> None:
    if row_ids:
        session.execute(
            update(Order)
            .where(Order.id.in_(list(row_ids)), Order.member_id == from_id)
            .values(member_id=to_id)
            .execution_options(synchronize_session=False)
        )


def spend_totals(
    session: Session, *, since: datetime | None, until: datetime | None
) -> dict[str, Decimal]:
    """Order value split by identified/guest and online/offline (KPIs)."""
    o = Order
    conds: list[ColumnElement[bool]] = [o.status.in_(COUNTED_STATUSES)]
    if since is not None:
        conds.append(o.ordered_at >= since)
    if until is not None:
        conds.append(o.ordered_at < until)
    online = o.channel != "pos"
    row = session.execute(
        select(
            _money_sum(o.total),
            _money_sum(case((o.member_id.is_not(None), o.total), else_=0)),
            _money_sum(case((online, o.total), else_=0)),
            func.count(),
            func.coalesce(func.sum(case((o.member_id.is_not(None), 1), else_=0)), 0),
        ).where(*conds)
    ).one()
    total, identified, online_total = row[0], row[1], row[2]
    return {
        "total": total,
        "identified": identified,
        "online": online_total,
        "offline": total - online_total,
        "orders": Decimal(row[3]),
        "identified_orders": Decimal(row[4]),
    }


# --- use cases (each owns its transaction) ----------------------------------------------------


def save_store(uow: UnitOfWork, *, code: str, data: StoreUpsert) -> tuple[StoreRead, bool]:
    """Create or update a store by its code."""

    def run(session: Session) -> tuple[StoreRead, bool]:
        store, created = upsert_store(session, code=code, data=data)
        return StoreRead.model_validate(store), created

    return uow.run(run)


def save_product(uow: UnitOfWork, *, sku: str, data: ProductUpsert) -> tuple[ProductRead, bool]:
    """Create or update a product by its SKU."""

    def run(session: Session) -> tuple[ProductRead, bool]:
        product, created = upsert_product(session, sku=sku, data=data)
        return ProductRead.model_validate(product), created

    return uow.run(run)


def get_stores(uow: UnitOfWork) -> list[StoreRead]:
    with uow.read() as session:
        return [StoreRead.model_validate(s) for s in list_stores(session)]


def get_products(
    uow: UnitOfWork, *, category: str | None, limit: int, offset: int
) -> list[ProductRead]:
    with uow.read() as session:
        return [
            ProductRead.model_validate(p)
            for p in list_products(session, category=category, limit=limit, offset=offset)
        ]


def check_orders_and_stats(session: Session) -> list[str]:
    """Differences in orders (totals, refunds) and in the kept stats against the orders."""
    problems: list[str] = []
    refunds = {
        oid: Decimal(int(c)) / 100
        for oid, c in session.execute(
            select(
                OrderRefund.order_id, func.sum(type_coerce(OrderRefund.amount, BigInteger))
            ).group_by(OrderRefund.order_id)
        )
    }
    expected: dict[int, list[Any]] = {}
    for o in session.scalars(select(Order)):
        if o.total != o.subtotal - o.discount_total + o.shipping_fee:
            problems.append(f"order {o.id}: total {o.total} ≠ subtotal − discount + shipping")
        if o.refunded_total != refunds.get(o.id, ZERO):
            problems.append(
                f"order {o.id}: refunded {o.refunded_total}, refunds say {refunds.get(o.id, ZERO)}"
            )
        if o.member_id is not None and o.status in COUNTED_STATUSES:
            agg = expected.setdefault(o.member_id, [0, ZERO])
            agg[0] += 1
            agg[1] += o.total - o.refunded_total
    for s in session.scalars(select(MemberStats)):
        count, spend = expected.get(s.member_id, [0, ZERO])
        if (s.order_count, s.total_spend) != (count, spend):
            problems.append(
                f"member {s.member_id}: stats say {s.order_count} orders / {s.total_spend}, "
                f"orders say {count} / {spend}"
            )
    return problems
