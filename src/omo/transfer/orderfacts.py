"""Import, step 1 for orders: the file's rows shaped into orders, each validated with the API's
schema and reduced to plain facts, on every core.

Shaping rows into orders and validating them (the API's `OrderIn`, identifier normalisation,
the idempotency hash) is most of an import's work before the database. The rows, as read, are
cut into runs of whole orders; the runs after the first are shaped and validated in forked
children (`shared.forked`), which see the rows without their being pickled and send back, run
by run, only the facts the checks and the writer need — plain values, cheap to pickle, where a
validated model costs more to pickle than to validate — and which rows each record spans. A
child's record is shaped again here only when something needs it: an error to place, or an
order that needs the identity use case (the rare slow path), which is validated again from its
record when it is written (`order_in`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from omo.commerce import service as commerce
from omo.commerce.schemas import OrderIn
from omo.ingest import service as ingest
from omo.members.identifiers import Identifier, IdentifierKind, InvalidIdentifier, normalise
from omo.shared import forked
from omo.shared.errors import DomainError
from omo.transfer.formats import RowTable
from omo.transfer.marketplaces import order_key_columns, records_for
from omo.transfer.results import ShapedElsewhere, Valid, field_path
from omo.transfer.shapes import MEMBER_REF, Record, RowError

# below this many rows a child costs more than it saves (a fork and a pipe: a few ms)
PARALLEL_FROM = 2_000

Line = tuple[str, str | None, str | None, int, int, int, int]


@dataclass(slots=True)
class OrderFacts:
    """A valid order as the writer stores it: money in cents, enums as their values."""

    channel: str
    external_id: str
    store: str | None
    fulfilment: str
    status: str
    ordered_at: datetime  # aware, UTC
    currency: str
    member_id: int | None
    subtotal: int
    discount_total: int
    shipping_fee: int
    total: int
    # sku, name, category, quantity, unit price, discount, line total (cents)
    lines: list[Line]

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.external_id)


@dataclass
class OrdersRead:
    valid: list[Valid]
    errors: list[RowError]  # of shapes and schemas, in no particular order
    record_rows: list[list[int]]  # every record's rows, valid or not
    cores: int  # processes that shaped and validated them


def read_orders(
    table: RowTable, shape: str, tz: tzinfo, region: str, *, workers: int | None = None
) -> OrdersRead:
    """The file's rows shaped into orders and validated, on `workers` cores (by default
    workers_for the rows); see OrderRuns."""
    runs = OrderRuns(table, shape, tz, region, workers=workers)
    try:
        return runs.rest()[0]
    finally:
        runs.close()


class OrderRuns:
    """The file's rows shaped into orders and validated, run by run, on every core: each
    process builds its runs' row dicts and records and validates them. An order id repeated in
    the file is refused at its later rows.

    The first run is this process's, the others the children's; each child sends each of its
    runs back as soon as it is validated. `first()` and then `following()` give the runs' orders
    one run at a time, so that the importer can write them while the children still work
    (`first_share`: the part of the rows the first run takes; `piece_rows`: at most this many
    rows in each of the others). `rest()` gives every run's orders.
    """

    def __init__(
        self, table: RowTable, shape: str, tz: tzinfo, region: str, *,
        workers: int | None = None, first_share: float = 0.5, piece_rows: int | None = None,
    ) -> None:  # fmt: skip
        self.table, self.shape, self.tz, self.region = table, shape, tz, region
        self.workers = workers if workers is not None else workers_for(len(table))
        self.cuts = _cuts(table, shape, self.workers, first_share, piece_rows)
        self.all = OrdersRead([], [], [], min(self.workers, len(self.cuts)))
        self._shaped: dict[int, list[Record]] = {}
        self._keys: list[list[tuple[Any, Any]]] = []
        self._seen: dict[tuple[str, str], int] = {}
        self._results = forked.iter_runs(self._work, self.cuts, self.workers)

    @property
    def more(self) -> bool:
        """Whether other runs are being validated beside the first."""
        return len(self.cuts) > 1

    def first(self) -> OrdersRead:
        """The first run's orders (shaped and validated in this process)."""
        if self._keys:
            raise RuntimeError("the first run was taken already")
        return self._take()

    def following(self) -> Iterator[OrdersRead]:
        """The other runs' orders, each as soon as it is validated."""
        while len(self._keys) < len(self.cuts):
            yield self._take()

    def rest(self) -> tuple[OrdersRead, bool]:
        """Every run's orders, and whether those the runs gave one by one stand: when an
        order's rows lie apart in the file (a shape joins them wherever they are), runs held
        parts of it, so the file is shaped whole here and validated again on every core."""
        for _ in self.following():
            pass
        if _apart(self._keys):
            return _read_shaped(self.table, self.shape, self.tz, self.region, self.workers), False
        return self.all, True

    def close(self) -> None:
        """Ends the children (if the runs were not all taken)."""
        self._results.close()

    def _work(self, cut: tuple[int, int], k: int) -> _Part:
        records, errors = records_for("orders", self.shape, self.table.rows(*cut), self.tz)
        self._shaped[k] = records  # kept when the run is worked here, gone with a child
        prepared, bad = _prepare(records, 0, self.region)
        keys = [(r.data.get("channel"), r.data.get("external_id")) for r in records]
        return prepared, errors + bad, [r.rows for r in records], keys if self.more else []

    def _take(self) -> OrdersRead:
        k = len(self._keys)
        prepared, errors, record_rows, keys = next(self._results)
        self._keys.append(keys)
        run = OrdersRead([], list(errors), record_rows, 1)
        records = self._shaped.get(k) or _ShapeAgain(self.table, self.cuts[k], self.shape, self.tz)
        _collect(run, self._seen, prepared, record_rows, records)
        self.all.valid.extend(run.valid)
        self.all.errors.extend(run.errors)
        self.all.record_rows.extend(record_rows)
        return run


def _read_shaped(table: RowTable, shape: str, tz: tzinfo, region: str, n: int) -> OrdersRead:
    """Every row shaped here, the records then validated on n cores."""
    records, errors = records_for("orders", shape, table.rows(), tz)

    def work(part: Sequence[Record], offset: int) -> tuple[list[_Prepared], list[RowError]]:
        return _prepare(part, offset, region)

    out = OrdersRead([], errors, [rec.rows for rec in records], n)
    seen: dict[tuple[str, str], int] = {}
    for prepared, bad in forked.map_parts(work, records, n):
        out.errors.extend(bad)
        _collect(out, seen, prepared, out.record_rows, records)
    return out


def _collect(
    out: OrdersRead,
    seen: dict[tuple[str, str], int],
    prepared: list[_Prepared],
    record_rows: list[list[int]],
    records: list[Record] | _ShapeAgain,
) -> None:
    """A part's valid orders added to out (an order id seen before refused at this row);
    `records`: the part's records, or what shapes them again (a child shaped them)."""
    for index, fields, idents, digest, member_ref in prepared:
        rows = record_rows[index]
        facts = OrderFacts(*fields)
        facts.ordered_at = _EPOCH + timedelta(microseconds=fields[5])
        if facts.key in seen:
            out.errors.append(RowError(rows[0], "id", f"repeats row {seen[facts.key]}"))
            continue
        seen[facts.key] = rows[0]
        source = (
            records[index]
            if isinstance(records, list)
            else ShapedElsewhere(rows, functools.partial(records.record, index))
        )
        out.valid.append(
            Valid(source, facts, [_identifier(i) for i in idents], digest,
                  _identifier(member_ref) if member_ref else None)
        )  # fmt: skip


def _apart(keys_of_parts: list[list[tuple[Any, Any]]]) -> bool:
    """Whether an order key shows up in more than one part."""
    seen: set[tuple[Any, Any]] = set()
    for keys in keys_of_parts:
        mine = set(keys)
        if not seen.isdisjoint(mine):
            return True
        seen |= mine
    return False


def _cuts(
    table: RowTable, shape: str, n: int, first_share: float = 0.5, piece_rows: int | None = None
) -> list[tuple[int, int]]:
    """The rows cut into runs: the first `first_share` of them, the rest in n - 1 equal runs
    (or more, of at most `piece_rows` rows); each cut moved down to where the order changes."""
    whole = [(0, len(table))]
    columns = order_key_columns(shape, table.names()) if n > 1 else None
    if columns is None:
        return whole
    first = len(table) * first_share
    pieces = max(n - 1, -(-(len(table) - int(first)) // piece_rows) if piece_rows else 0)
    bounds = [0]
    for k in range(1, pieces + 1):
        at = max(bounds[-1], int(first + (len(table) - first) * (k - 1) / pieces))
        while 0 < at < len(table):
            before, here = table.keys(columns, at - 1, at + 1)
            if before != here:
                break
            at += 1
        bounds.append(at)
    bounds.append(len(table))
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


class _ShapeAgain:
    """The records of a run shaped in a child, shaped again here the first time one is asked
    for (shaping is deterministic: the same rows give the same records in the same order)."""

    def __init__(self, table: RowTable, cut: tuple[int, int], shape: str, tz: tzinfo) -> None:
        self.table, self.cut, self.shape, self.tz = table, cut, shape, tz
        self.records: list[Record] | None = None

    def record(self, index: int) -> Record:
        if self.records is None:
            start, stop = self.cut
            self.records, _ = records_for("orders", self.shape, self.table.rows(start, stop),
                                          self.tz)  # fmt: skip
        return self.records[index]


def workers_for(n_rows: int) -> int:
    """The processes that shape and validate this many rows of orders: every core when there
    are enough and this process may fork (shared.forked), else this one."""
    return forked.cores() if n_rows >= PARALLEL_FROM and forked.can_fork() else 1


def order_in(v: Valid) -> OrderIn:
    """The API's model of a valid order, for the use case (validated again from its record)."""
    order = OrderIn.model_validate(v.record.data)
    order.member_id = v.model.member_id
    return order


# what a child sends back: plain tuples pickle several times faster than dataclasses and enums
# (20,000 orders: 0.03 s against 0.09 s, and as much again to unpickle)
_Ident = tuple[str, str, str]
_Prepared = tuple[int, tuple[Any, ...], list[_Ident], str, _Ident | None]
# a run of rows: its valid orders, errors, every record's rows, and its order keys
_Part = tuple[list[_Prepared], list[RowError], list[list[int]], list[tuple[Any, Any]]]
_KINDS = {k.value: k for k in IdentifierKind}


def _plain(ident: Identifier) -> _Ident:
    return (ident.kind.value, ident.value, ident.namespace)


def _identifier(plain: _Ident) -> Identifier:
    kind, value, namespace = plain
    return Identifier(_KINDS[kind], value, namespace)


def _prepare(
    records: Sequence[Record], offset: int, region: str
) -> tuple[list[_Prepared], list[RowError]]:
    out: list[_Prepared] = []
    errors: list[RowError] = []
    for index, rec in enumerate(records, start=offset):
        try:
            model = OrderIn.model_validate(rec.data)
        except ValidationError as exc:
            errors.extend(row_errors(rec, exc))
            continue
        try:
            idents = ingest.normalise_all(model.customer, field="customer", region=region)
        except DomainError as exc:
            row, column = rec.locate(tuple(field_path(exc.field)))
            errors.append(RowError(row, column, exc.message))
            continue
        member_ref = None
        if rec.member_ref:
            try:
                member_ref = _plain(parse_member_ref(rec.member_ref, region))
            except InvalidIdentifier as exc:
                errors.append(RowError(rec.rows[0], MEMBER_REF, str(exc)))
                continue
        digest = commerce.payload_hash(model)
        out.append((index, _facts(model), [_plain(i) for i in idents], digest, member_ref))
    return out, errors


def _facts(m: OrderIn) -> tuple[Any, ...]:
    """The fields of OrderFacts, in order; ordered_at as microseconds since the epoch."""
    lines: list[Line] = []
    subtotal = 0
    for li in m.lines:
        price, discount = _cents(li.unit_price), _cents(li.discount)
        total = price * li.quantity - discount
        subtotal += total
        lines.append((li.sku, li.name, li.category, li.quantity, price, discount, total))
    assert m.fulfilment is not None and m.total is not None  # set by OrderIn's own check
    return (
        m.channel.value, m.external_id, m.store, m.fulfilment.value, m.status.value,
        (m.ordered_at - _EPOCH) // _MICROSECOND, m.currency, m.member_id, subtotal,
        _cents(m.discount_total), _cents(m.shipping_fee), _cents(m.total), lines,
    )  # fmt: skip


# ordered_at travels as microseconds since the epoch: an aware datetime is half the cost of
# pickling a child's facts (10,000 orders: 0.07 s against 0.035 s, sent and received)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _cents(value: Decimal) -> int:
    return int(value * 100)


def parse_member_ref(ref: Any, region: str) -> Identifier:
    """An export's member column (`kind:namespace:value`) as the identifier it names."""
    kind, _, rest = str(ref).partition(":")
    ns, _, value = rest.partition(":")
    return normalise(kind, value, ns or None, region=region)


def row_errors(rec: Record, exc: ValidationError) -> list[RowError]:
    """A schema's complaints about a record, each at the file's row and column."""
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        head, sep, rest = msg.partition(": ")
        if sep and not loc and head.isidentifier():
            loc, msg = (head,), rest  # model-level checks say which field they are about
        row, column = rec.locate(loc)
        out.append(RowError(row, column, msg))
    return out
