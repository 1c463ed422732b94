"""Import, step 1 for orders: each record validated with the API's schema and reduced to plain
facts, on every core.

Validating an order (the API's `OrderIn`, identifier normalisation, the idempotency hash) is
most of an import's work before the database. Records are cut into one run per core; the runs
after the first are validated in forked children (`shared.forked`), which send back only the
facts the checks and the writer need — plain values, cheap to pickle, where a validated model
costs more to pickle than to validate. An order that needs the identity use case (the rare
slow path) is validated again from its record when it is written (`order_in`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from omo.commerce import service as commerce
from omo.commerce.schemas import OrderIn
from omo.ingest import service as ingest
from omo.members.identifiers import Identifier, IdentifierKind, InvalidIdentifier, normalise
from omo.shared import forked
from omo.shared.errors import DomainError
from omo.transfer.results import Valid, field_path
from omo.transfer.shapes import MEMBER_REF, Record, RowError

# below this many records a child costs more than it saves (a fork and a pipe: a few ms)
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


def validate_orders(
    records: Sequence[Record], region: str, *, workers: int | None = None
) -> tuple[list[Valid], list[RowError]]:
    """Every record validated (on `workers` cores; by default workers_for the records); an
    order id repeated in the file is refused at its later rows."""
    n = workers if workers is not None else workers_for(len(records))

    def work(part: Sequence[Record], offset: int) -> tuple[list[_Prepared], list[RowError]]:
        return _prepare(part, offset, region)

    valid: list[Valid] = []
    errors: list[RowError] = []
    seen: dict[tuple[str, str], int] = {}
    for prepared, bad in forked.map_parts(work, records, n):
        errors.extend(bad)
        for index, fields, idents, digest, member_ref in prepared:
            rec = records[index]
            facts = OrderFacts(*fields)
            if facts.key in seen:
                errors.append(RowError(rec.rows[0], "id", f"repeats row {seen[facts.key]}"))
                continue
            seen[facts.key] = rec.rows[0]
            valid.append(
                Valid(rec, facts, [_identifier(i) for i in idents], digest,
                      _identifier(member_ref) if member_ref else None)
            )  # fmt: skip
    return valid, errors


def workers_for(n_records: int) -> int:
    """The processes that validate this many orders: every core when there are enough and
    this process may fork (shared.forked), else this one."""
    return forked.cores() if n_records >= PARALLEL_FROM and forked.can_fork() else 1


def order_in(v: Valid) -> OrderIn:
    """The API's model of a valid order, for the use case (validated again from its record)."""
    order = OrderIn.model_validate(v.record.data)
    order.member_id = v.model.member_id
    return order


# what a child sends back: plain tuples pickle several times faster than dataclasses and enums
# (20,000 orders: 0.03 s against 0.09 s, and as much again to unpickle)
_Ident = tuple[str, str, str]
_Prepared = tuple[int, tuple[Any, ...], list[_Ident], str, _Ident | None]
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
    """The fields of OrderFacts, in order."""
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
        m.ordered_at, m.currency, m.member_id, subtotal, _cents(m.discount_total),
        _cents(m.shipping_fee), _cents(m.total), lines,
    )  # fmt: skip


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
