"""Use cases of the commerce area: catalogue, orders and per-member purchase stats.

Functions take the caller's session; the orchestrator that calls them owns the transaction.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from omo.commerce.channels import COUNTED_STATUSES, OFFLINE_CHANNELS
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

# stats live in commerce/stats.py; the area's callers reach them through this module
from omo.commerce.stats import add_to_stats as add_to_stats
from omo.commerce.stats import check_orders_and_stats as check_orders_and_stats
from omo.commerce.stats import init_stats as init_stats
from omo.commerce.stats import money_sum
from omo.commerce.stats import rebuild_stats as rebuild_stats
from omo.commerce.stats import recompute_stats as recompute_stats
from omo.commerce.stats import stats_of as stats_of
from omo.db import UnitOfWork
from omo.members.identifiers import Identifier
from omo.shared import sequences
from omo.shared.errors import Conflict, NotFound
from omo.shared.pins import forget, memo
from omo.shared.prepared import Prepared
from omo.shared.reassign import reassign_rows
from omo.shared.rows import rows_of
from omo.shared.sqlmatch import keys_in
from omo.shared.untracked import untracked

# --- catalogue --------------------------------------------------------------------------------


def upsert_store(session: Session, *, code: str, data: StoreUpsert) -> tuple[Store, bool]:
    forget(session, "stores")
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
    forget(session, "products")
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
    """The catalogue's products among `skus`, read once per transaction (a checkout prices
    the basket and then records it)."""
    asked = set(skus)
    known = memo(session, "products")
    wanted = sorted(asked - known.keys())
    if wanted:
        found: dict[str, Product] = {}
        for statement, params in _product_reads(wanted):
            rows = statement.rows(session, params)
            products = (untracked(Product, dict(zip(_PRODUCT_KEYS, r, strict=True))) for r in rows)
            found.update({p.sku: p for p in products})
        known.update({sku: found.get(sku) for sku in wanted})
    return {sku: p for sku in asked if isinstance(p := known.get(sku), Product)}


def catalogue_ahead(session: Session, skus: Iterable[str]) -> None:
    """catalogue_for's reads, read ahead (Prepared.ahead)."""
    known = memo(session, "products")
    for statement, params in _product_reads(sorted(set(skus) - known.keys())):
        statement.ahead(session, params)


def store_ahead(session: Session, code: str) -> None:
    """store_by_code's read, read ahead (Prepared.ahead)."""
    if code not in memo(session, "stores"):
        _STORE_BY_CODE.ahead(session, {"code": code})


def _product_reads(wanted: list[str]) -> Iterator[tuple[Prepared, dict[str, str]]]:
    for start in range(0, len(wanted), 50):
        chunk = wanted[start : start + 50]
        yield _products_by_sku(len(chunk)), {f"sku_{n}": sku for n, sku in enumerate(chunk)}


# Every sale's products and store, as prepared statements (shared/prepared.py): the ORM's
# loading cost more than the query. They come back as Product and Store objects the session
# does not track (read-only).
@functools.lru_cache(maxsize=64)
def _products_by_sku(n: int) -> Prepared:
    """The products of n SKUs: one statement per basket size (a prepared statement does not
    expand an IN list)."""
    wanted: list[Any] = [bindparam(f"sku_{i}") for i in range(n)]
    return Prepared(select(Product.__table__).where(Product.__table__.c.sku.in_(wanted)))


_PRODUCT_KEYS = [c.key for c in Product.__table__.c]
_STORE_KEYS = [c.key for c in Store.__table__.c]
_STORE_BY_CODE = Prepared(
    select(Store.__table__).where(Store.__table__.c.code == bindparam("code"))
)


def store_by_code(session: Session, code: str, *, field: str = "store") -> Store:
    known = memo(session, "stores")
    held = known.get(code)
    if isinstance(held, Store):
        return held
    row = _STORE_BY_CODE.first(session, {"code": code})
    if row is None:
        raise NotFound(f"no store with code {code!r}", field=field)
    store = known[code] = untracked(Store, dict(zip(_STORE_KEYS, row, strict=True)))
    return store


def store_code(session: Session, store_id: int | None) -> str | None:
    """The code of a store by its id (an order's), or None for none."""
    if store_id is None:
        return None
    return session.scalar(select(Store.code).where(Store.id == store_id))


def kept_totals(session: Session, *, order_ids: Sequence[int]) -> dict[int, Decimal]:
    """What the customer keeps of each order: its total less what was refunded (none for a
    cancelled one or one whose every unit came back, whatever a refund kept back)."""
    if not order_ids:
        return {}
    rows = session.execute(
        select(Order.id, Order.total, Order.refunded_total, Order.status).where(
            Order.id.in_(list(order_ids))
        )
    )
    return {i: kept_of(total, refunded, status) for i, total, refunded, status in rows}


def kept_of(total: Decimal, refunded: Decimal, status: str) -> Decimal:
    """What the customer keeps of an order of this total, refunded so far and status (see
    kept_totals)."""
    return Decimal(0) if status in ("cancelled", "refunded") else total - refunded


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
    """The order recorded under this id; every sale asks first, and almost every answer is
    none, so the id is looked up in Core and the row loaded only when there is one."""
    found = _FIND_ORDER.scalar(session, {"channel": channel, "external_id": external_id})
    return session.get(Order, found) if found is not None else None


def recorded_order(
    session: Session, *, channel: str, external_id: str, digest: str
) -> Order | None:
    """The order already recorded under this id (a retry is answered with it), or None; the
    same id with other content (`digest`, the payload's hash) is a Conflict."""
    held = find_order(session, channel=channel, external_id=external_id)
    if held is not None and held.payload_hash != digest:
        raise Conflict(
            f"order {external_id} on {channel} was already recorded with different content",
            field="external_id",
        )
    return held


# built once: every sale looks its id up first (a retry is answered with the first recording)
_FIND_ORDER = Prepared(
    select(Order.__table__.c.id).where(
        Order.__table__.c.channel == bindparam("channel"),
        Order.__table__.c.external_id == bindparam("external_id"),
    )
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
    values: dict[str, Any] = {
        "channel": order.channel.value, "external_id": order.external_id,
        "payload_hash": digest, "member_id": member_id, "store_id": store_id,
        "fulfilment": order.fulfilment.value, "status": order.status.value,
        "ordered_at": order.ordered_at, "currency": order.currency,
        "subtotal": order.subtotal, "discount_total": order.discount_total,
        "shipping_fee": order.shipping_fee, "total": order.total,
        "refunded_total": Decimal(0), "created_at": now,
    }  # fmt: skip
    # Written by prepared statements (shared/prepared.py): the ORM's flush of the order, its
    # lines and contacts was the largest part of a checkout commit. Pending ORM rows (a member
    # just enrolled) go first, as an autoflush would send them.
    values["id"] = sequences.next_id(session, _ORDERS)
    if values["id"] is None:
        values["id"] = _INSERT_ORDER.scalar(session, values)
    else:  # PostgreSQL: it goes with the lines and the rest of the sale
        _INSERT_ORDER_WITH_ID.execute_later(session, values)
    row = untracked(Order, values)  # what callers read (shared/untracked.py)
    catalogue = catalogue_for(session, (li.sku for li in order.lines))
    written: list[OrderLine] = []
    memo(session, "new_order_lines")[row.id] = written
    for n, line in enumerate(order.lines, start=1):
        product = catalogue.get(line.sku)
        line_values = {
            "id": None, "order_id": row.id, "line_no": n, "sku": line.sku,
            "product_id": product.id if product else None,
            "name": line.name or (product.name if product else None),
            "category": line.category or (product.category if product else None),
            "quantity": line.quantity, "unit_price": line.unit_price, "discount": line.discount,
            "line_total": line.unit_price * line.quantity - line.discount,
        }  # fmt: skip
        written.append(untracked(OrderLine, line_values))
    # the lines and contacts are sent with the sale's next statement (execute_later)
    _INSERT_LINE.execute_later(
        session, *({k: getattr(li, k) for k in _LINE_COLUMNS} for li in written)
    )
    kept = [
        {"order_id": row.id, "kind": i.kind.value, "namespace": i.namespace, "value": i.value}
        for i in dict.fromkeys(contacts)
    ]
    _INSERT_CONTACT.execute_later(session, *kept)
    if member_id is not None and row.status in COUNTED_STATUSES:
        add_to_stats(session, member_id=member_id, orders=[row], now=now)
    return row


_ORDERS: sa.Table = Order.__table__  # type: ignore[assignment]
_INSERT_ORDER = Prepared(insert(_ORDERS).returning(_ORDERS.c.id))
_INSERT_ORDER_WITH_ID = Prepared(insert(_ORDERS))


def order_id_ahead(session: Session) -> None:
    """record_order's id for a new order, read ahead (shared/sequences.py)."""
    sequences.id_ahead(session, _ORDERS)


_INSERT_LINE = Prepared(insert(OrderLine.__table__))  # type: ignore[arg-type]
_INSERT_CONTACT = Prepared(insert(OrderContact.__table__))  # type: ignore[arg-type]
_LINE_COLUMNS = [c.name for c in OrderLine.__table__.c if c.name != "id"]


def lock_order(session: Session, order_id: int) -> Order:
    """The order, fresh and row-locked (PostgreSQL; SQLite has one writer) for a change."""
    stmt = select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    order = session.scalar(stmt)
    if order is None:
        raise NotFound(f"no order {order_id}", field="order_id")
    return order


def order_result(session: Session, row: Order, *, replayed: bool) -> OrderResult:
    lines = [OrderLineRead.model_validate(li) for li in order_lines(session, row.id)]
    base = {k: getattr(row, k) for k in OrderRead.model_fields}
    return OrderResult(**base, lines=lines, replayed=replayed)


def has_bought(session: Session, *, member_id: int, sku: str) -> bool:
    """Whether the member bought this product in an order that counts (not cancelled); a
    line returned since still counts — they had it."""
    return (
        session.scalar(
            select(OrderLine.id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(
                Order.member_id == member_id,
                Order.status.in_(COUNTED_STATUSES),
                OrderLine.sku == sku,
            )
            .limit(1)
        )
        is not None
    )


def order_lines(session: Session, order_id: int) -> list[OrderLine]:
    written = memo(session, "new_order_lines").get(order_id)
    if isinstance(written, list):  # recorded in this transaction: the ORM holds them as written
        return list(written)
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


def skus_bought(session: Session, *, member_id: int) -> set[str]:
    """Every SKU the member has bought in an order that counts."""
    return set(
        session.scalars(
            select(OrderLine.sku)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.member_id == member_id, Order.status.in_(COUNTED_STATUSES))
            .distinct()
        )
    )


def orders_with_items(
    session: Session, *, order_ids: Sequence[int], skus: Sequence[str], categories: Sequence[str]
) -> set[int]:
    """Which of these orders still hold one of the SKUs or an item of one of the categories: a
    line whose every unit a refund brought back holds none."""
    if not order_ids or not (skus or categories):
        return set()
    match = or_(OrderLine.sku.in_(list(skus)), OrderLine.category.in_(list(categories)))
    found: set[int] = set()
    for start in range(0, len(order_ids), 500):
        chunk = list(order_ids[start : start + 500])
        lines = session.execute(
            select(OrderLine.order_id, OrderLine.line_no, OrderLine.quantity).where(
                OrderLine.order_id.in_(chunk), match
            )
        ).all()
        back = returned_units(session, order_ids=sorted({o for o, _, _ in lines}))
        found |= {o for o, n, quantity in lines if back.get(o, {}).get(n, 0) < quantity}
    return found


def returned_units(session: Session, *, order_ids: Sequence[int]) -> dict[int, dict[int, int]]:
    """Units brought back so far per order and line number, by the refunds made by lines (a
    refund of the whole order or of an amount names none)."""
    returned: dict[int, dict[int, int]] = {}
    if not order_ids:
        return returned
    refunds = session.execute(
        select(OrderRefund.order_id, OrderRefund.lines).where(
            OrderRefund.order_id.in_(list(order_ids))
        )
    )
    for order_id, lines in refunds:
        units = returned.setdefault(order_id, {})
        for li in lines or []:
            units[li["line_no"]] = units.get(li["line_no"], 0) + li["quantity"]
    return returned


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


def stores_by_member(
    session: Session, member_ids: tuple[int, int] | None = None
) -> dict[int, list[int]]:
    """The stores each member bought at or picked up from (behaviour for identity matching).
    `member_ids` (after, up to): only the members with after < id <= up to."""
    stmt = select(Order.member_id, Order.store_id).where(
        Order.member_id.is_not(None), Order.store_id.is_not(None)
    )
    if member_ids is not None:
        stmt = stmt.where(Order.member_id > member_ids[0], Order.member_id <= member_ids[1])
    rows = session.connection().execute(stmt.distinct().execution_options(yield_per=50_000))
    out: dict[int, list[int]] = {}
    for member_id, store_id in rows:
        if member_id is not None and store_id is not None:
            out.setdefault(member_id, []).append(store_id)
    return out


# --- merge support ----------------------------------------------------------------------------


def reassign_members(session: Session, mapping: Mapping[int, int]) -> dict[int, list[int]]:
    """Re-point the orders of each key of `mapping` to its value; moved order ids by member."""
    return reassign_rows(session, id_col=Order.id, member_col=Order.member_id, mapping=mapping)


def restore_rows(session: Session, *, row_ids: Sequence[int], from_id: int, to_id: int) -> None:
    if row_ids:
        session.execute(
            update(Order)
            .where(Order.id.in_(list(row_ids)), Order.member_id == from_id)
            .values(member_id=to_id)
            .execution_options(synchronize_session=False)
        )


def member_purchases(*, since: datetime | None, until: datetime) -> Any:
    """(channel, member_id, fulfilment, order_id) of every identified member's counted order
    in [since, until) (since None: all before until): the order side of a funnel."""
    conds = [Order.status.in_(COUNTED_STATUSES), Order.ordered_at < until]
    if since is not None:
        conds.append(Order.ordered_at >= since)
    return select(
        Order.channel, Order.member_id, Order.fulfilment, Order.id.label("order_id")
    ).where(*conds, Order.member_id.is_not(None))


def ordered_after(member_id: Any, channel: Any, start: Any, *, until: datetime) -> Any:
    """EXISTS a counted order by `member_id` in `channel` at or after `start`, before `until`
    (columns of the caller's query: a cart converted)."""
    return (
        select(Order.id)
        .where(
            Order.member_id == member_id,
            Order.channel == channel,
            Order.ordered_at >= start,
            Order.ordered_at < until,
            Order.status.in_(COUNTED_STATUSES),
        )
        .exists()
    )


def order_economics(*, since: datetime, until: datetime) -> Any:
    """Per counted order of [since, until), in cents: list value of the goods (unit price ×
    quantity), line discounts, the order-level discount, the goods' cost and the list value of
    the lines whose cost is known (products with a unit cost); with channel and member."""
    cents = BigInteger
    line_list = type_coerce(OrderLine.unit_price, cents) * OrderLine.quantity
    line_cost = type_coerce(Product.unit_cost, cents) * OrderLine.quantity
    lines = (
        select(
            OrderLine.order_id,
            func.sum(line_list).label("list_cents"),
            func.sum(type_coerce(OrderLine.discount, cents)).label("line_discount_cents"),
            func.coalesce(func.sum(line_cost), 0).label("cost_cents"),
            func.coalesce(
                func.sum(case((Product.unit_cost.is_not(None), line_list), else_=0)), 0
            ).label("costed_list_cents"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where(
            Order.status.in_(COUNTED_STATUSES),
            Order.ordered_at >= since,
            Order.ordered_at < until,
        )
        .group_by(OrderLine.order_id)
        .subquery()
    )
    return select(
        Order.id.label("order_id"),
        Order.channel,
        Order.member_id,
        lines.c.list_cents,
        lines.c.line_discount_cents,
        type_coerce(Order.discount_total, cents).label("order_discount_cents"),
        lines.c.cost_cents,
        lines.c.costed_list_cents,
    ).join(lines, lines.c.order_id == Order.id)


def attributable_orders(session: Session, *, since: datetime, until: datetime) -> list[Any]:
    """(member_id, channel, ordered_at, revenue_cents, discount_cents) of every counted order
    of [since, until), guests' included, oldest first: revenue after refunds, discounts on
    lines and on the order."""
    econ = order_economics(since=since, until=until).subquery()
    revenue = type_coerce(Order.total, BigInteger) - type_coerce(Order.refunded_total, BigInteger)
    return list(
        session.execute(
            select(
                Order.member_id, Order.channel, Order.ordered_at, revenue,
                econ.c.line_discount_cents + econ.c.order_discount_cents,
            )
            .join(econ, econ.c.order_id == Order.id)
            .order_by(Order.ordered_at, Order.id)
        )
    )  # fmt: skip


def bought_in_store_before(member_id: Any, *, before: datetime) -> Any:
    """EXISTS a counted store (POS) order by `member_id` before `before` (a column of the
    caller's query)."""
    return (
        select(Order.id)
        .where(
            Order.member_id == member_id,
            Order.ordered_at < before,
            Order.channel.in_(sorted(OFFLINE_CHANNELS)),
            Order.status.in_(COUNTED_STATUSES),
        )
        .exists()
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
            money_sum(o.total),
            money_sum(case((o.member_id.is_not(None), o.total), else_=0)),
            money_sum(case((online, o.total), else_=0)),
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


@dataclass(frozen=True)
class PeriodSales:
    orders: int  # counted orders in the period, guests' included
    net_sales: Decimal  # their totals less what was refunded
    buyers: int  # members with an order in the period
    repeat_buyers: int  # of them, those with two or more
    returning_buyers: int  # of them, those who had bought before the period
    past_buyers: int  # members with an order before `until`
    lapsed_buyers: int  # of them, those with none since `lapsed_since`


def orders_and_sales(
    session: Session, *, since: datetime, until: datetime
) -> tuple[int, Decimal, int]:
    """Counted orders of [since, until), their net sales and the members who placed them (a
    dashboard trend point)."""
    o = Order
    orders, gross, refunded, buyers = session.execute(
        select(
            func.count(), money_sum(o.total), money_sum(o.refunded_total),
            func.count(o.member_id.distinct()),
        ).where(o.status.in_(COUNTED_STATUSES), o.ordered_at >= since, o.ordered_at < until)
    ).one()  # fmt: skip
    return int(orders), Decimal(gross) - Decimal(refunded), int(buyers)


def period_sales(
    session: Session, *, since: datetime, until: datetime, lapsed_since: datetime
) -> PeriodSales:
    """Orders, net sales and buyer counts of [since, until) (KPIs)."""
    o = Order
    counted = o.status.in_(COUNTED_STATUSES)
    in_period = and_(counted, o.ordered_at >= since, o.ordered_at < until)
    orders, gross, refunded = session.execute(
        select(func.count(), money_sum(o.total), money_sum(o.refunded_total)).where(in_period)
    ).one()
    per_buyer = (
        select(o.member_id.label("member_id"), func.count().label("n"))
        .where(in_period, o.member_id.is_not(None))
        .group_by(o.member_id)
        .subquery()
    )
    before = aliased(Order)  # EXISTS walks ix_orders_member_ordered; IN built a set of them all
    earlier = (
        select(before.id)
        .where(
            before.member_id == per_buyer.c.member_id,
            before.ordered_at < since,
            before.status.in_(COUNTED_STATUSES),
        )
        .exists()
    )
    buyers, repeat, returning = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((per_buyer.c.n >= 2, 1), else_=0)), 0),
            func.coalesce(func.sum(case((earlier, 1), else_=0)), 0),
        )
    ).one()
    last = (
        select(func.max(o.ordered_at).label("last"))
        .where(counted, o.ordered_at < until, o.member_id.is_not(None))
        .group_by(o.member_id)
        .subquery()
    )
    past, lapsed = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((last.c.last < lapsed_since, 1), else_=0)), 0),
        )
    ).one()
    return PeriodSales(
        orders=int(orders), net_sales=gross - refunded, buyers=int(buyers),
        repeat_buyers=int(repeat), returning_buyers=int(returning), past_buyers=int(past),
        lapsed_buyers=int(lapsed),
    )  # fmt: skip


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


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    orders = rows_of(session, Order, Order.member_id, member_ids)
    order_ids = [o["id"] for o in orders]
    return {
        "orders": orders,
        "order_lines": rows_of(session, OrderLine, OrderLine.order_id, order_ids),
        "order_refunds": rows_of(session, OrderRefund, OrderRefund.order_id, order_ids),
        "order_contacts": rows_of(session, OrderContact, OrderContact.order_id, order_ids),
        "member_stats": rows_of(session, MemberStats, MemberStats.member_id, member_ids),
    }


def erase(session: Session, *, member_ids: Sequence[int]) -> None:
    """Drop the phones and e-mails the members' orders came with, and what staff wrote on their
    refunds; the orders stay, anonymous."""
    orders = select(Order.id).where(Order.member_id.in_(list(member_ids))).scalar_subquery()
    session.execute(delete(OrderContact).where(OrderContact.order_id.in_(orders)))
    session.execute(
        update(OrderRefund)
        .where(OrderRefund.order_id.in_(orders), OrderRefund.reason.is_not(None))
        .values(reason=None)
    )
