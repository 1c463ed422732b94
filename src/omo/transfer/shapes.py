"""From a file's rows to the inputs of the areas' schemas, remembering which row and column each
value came from so that every error can name them. docs/import.md documents the columns.

Shapes: `omo` (our own columns; an order spans one row per line, or one nested JSON object per
order in JSONL), `shopify` (Shopify's orders export CSV) and `shopee` (Shopee's order report,
Chinese or English headers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from omo.transfer.formats import Row

KINDS = ("stores", "products", "members", "orders", "events", "points", "tiers", "coupons")
SHAPES = ("omo", "shopify", "shopee")
# identifier columns: several values in one cell are separated by "|"; kinds that live in
# someone else's id space carry it as a prefix, e.g. marketplace_buyer = "shopee:buyer88"
IDENTIFIER_COLUMNS = (
    "phone", "email", "card", "line_id", "app_user", "marketplace_buyer", "social_login",
)  # fmt: skip
NAMESPACED = ("marketplace_buyer", "social_login")
STORE_COLUMNS = ("code", "name", "region", "city", "address", "opened_on", "is_active")
PRODUCT_COLUMNS = ("sku", "name", "category", "price", "unit_cost", "is_active")
MEMBER_COLUMNS = (
    *IDENTIFIER_COLUMNS, "name", "gender", "birth_date", "country", "postal_code", "city",
    "district", "address_line", "preferred_language", "joined_at", "join_channel", "join_store",
    "consent_email", "consent_sms", "consent_line", "consent_push",
)  # fmt: skip
ORDER_COLUMNS = (
    "channel", "external_id", "ordered_at", "store", "fulfilment", "status", "currency",
    "member_id", *IDENTIFIER_COLUMNS, "discount_total", "shipping_fee", "total",
)  # fmt: skip
LINE_COLUMNS = ("sku", "name", "category", "quantity", "unit_price", "discount")
EVENT_COLUMNS = (
    "event_id", "kind", "occurred_at", "channel", "member_id", *IDENTIFIER_COLUMNS, "store",
    "sku", "query", "utm_source", "utm_medium", "utm_campaign", "survey", "score",
)  # fmt: skip
# opening balances from the programme before (points/openings.py)
POINTS_COLUMNS = (
    "reference", "points", "member_id", *IDENTIFIER_COLUMNS, "earned_at", "available_at",
    "expires_at", "reason",
)  # fmt: skip
# levels from the programme before, held through a day (tiers/grants.py)
TIER_COLUMNS = ("member_id", *IDENTIFIER_COLUMNS, "level", "until", "reason")
# coupons the programme before issued, not used yet (coupons/imported.py)
COUPON_COLUMNS = ("code", "template", "member_id", *IDENTIFIER_COLUMNS, "valid_from",
                  "valid_until")  # fmt: skip
# written by `omo export members` for the reader's benefit; import ignores them
MEMBER_EXPORT_ONLY = (
    "member_id", "order_count", "total_spend", "online_spend", "offline_spend",
    "first_order_at", "last_order_at",
)  # fmt: skip
# `omo export` writes, beside an order's or event's own identifiers, one identifier of the
# member it belongs to ("kind:namespace:value"), so that a member tie made by member_id or by a
# later merge survives the trip into another database. It is not part of the order's content.
MEMBER_REF = "member"
COLUMNS = {
    "stores": STORE_COLUMNS,
    "products": PRODUCT_COLUMNS,
    "members": MEMBER_COLUMNS,
    "orders": (*ORDER_COLUMNS, *LINE_COLUMNS, MEMBER_REF),
    "events": (*EVENT_COLUMNS, MEMBER_REF),
    "points": (*POINTS_COLUMNS, MEMBER_REF),
    "tiers": (*TIER_COLUMNS, MEMBER_REF),
    "coupons": (*COUPON_COLUMNS, MEMBER_REF),
}
TRUE = {"1", "true", "yes", "y", "t", "是", "同意"}
FALSE = {"0", "false", "no", "n", "f", "否", "不同意"}


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.message}"


@dataclass
class Record:
    """One input to an area's schema, and where in the file each part of it came from."""

    rows: list[int]
    data: dict[str, Any]
    # schema field (first part of a pydantic error location) -> the file's column
    columns: dict[str, str] = field(default_factory=dict)
    line_rows: list[int] = field(default_factory=list)
    ident_columns: list[str] = field(default_factory=list)  # per customer/identifier entry
    member_ref: str | None = None  # MEMBER_REF of an exported order or event

    def locate(self, loc: tuple[Any, ...]) -> tuple[int, str]:
        """The file row and column a schema error location points at."""
        head = str(loc[0]) if loc else ""
        if head == "lines" and len(loc) > 1 and isinstance(loc[1], int):
            row = self.line_rows[loc[1]] if loc[1] < len(self.line_rows) else self.rows[0]
            sub = str(loc[2]) if len(loc) > 2 else "lines"
            return row, self.columns.get(f"lines.{sub}", sub)
        entry = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
        if (
            head in ("customer", "identifiers")
            and entry is not None
            and entry < len(self.ident_columns)
        ):
            return self.rows[0], self.ident_columns[entry]
        return self.rows[0], self.columns.get(head, head or "(row)")


class ShapeError(ValueError):
    """The file's header does not fit the shape."""


# --- values -----------------------------------------------------------------------------------


def parse_datetime(value: Any, tz: tzinfo) -> Any:
    """ISO 8601, `2026-01-31 10:00[:00] [+0800]` or `2026/01/31 10:00`; naive means `tz`."""
    if value is None or isinstance(value, datetime):
        return (
            value.replace(tzinfo=tz) if isinstance(value, datetime) and not value.tzinfo else value
        )
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    text = str(value).strip().replace("/", "-")
    if len(text) > 19 and text[19:20] == " ":  # "2026-01-31 10:00:00 -0400" (Shopify)
        text = text[:19] + text[20:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return value  # the schema reports it, naming the column
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def parse_bool(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    return value  # the schema reports it


def money(value: Any) -> Decimal | None:
    """A money cell as Decimal, tolerating thousands separators and currency signs."""
    if value is None:
        return None
    text = str(value).replace(",", "").replace("NT$", "").replace("$", "").strip()
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def parse_day(value: Any) -> Any:
    """A day: `2026-12-31`, `2026/12/31` or a spreadsheet's date cell."""
    if isinstance(value, datetime):
        return value.date() if value.time() == time(0) else value
    if isinstance(value, date):
        return value
    return str(value).strip().replace("/", "-")


def parse_until(value: Any, tz: tzinfo) -> Any:
    """An end: a date alone (or a spreadsheet's date cell, naive at midnight) means through
    that day — its end, in `tz`; else as parse_datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is not None or value.time() != time(0):
            return parse_datetime(value, tz)
        day = value.date()
    elif isinstance(value, date):
        day = value
    elif isinstance(value, str) and len(text := value.strip()) == 10:
        try:
            day = date.fromisoformat(text.replace("/", "-"))
        except ValueError:
            return value  # the schema says what is wrong with it
    else:
        return parse_datetime(value, tz)
    return datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(days=1)


def identifiers(row: Row, prefix: str = "") -> tuple[list[dict[str, Any]], list[str]]:
    """The identifier entries of a row, and the column each came from."""
    out: list[dict[str, Any]] = []
    cols: list[str] = []
    for kind in IDENTIFIER_COLUMNS:
        column = prefix + kind
        cell = row.get(column)
        if cell is None:
            continue
        for part in str(cell).split("|"):
            part = part.strip()
            if not part:
                continue
            if kind in NAMESPACED:
                ns, _, value = part.partition(":")
                out.append({"kind": kind, "namespace": ns or None, "value": value or ns})
            else:
                out.append({"kind": kind, "value": part})
            cols.append(column)
    return out, cols


def _check_header(header: Iterable[str], known: Iterable[str], kind: str) -> None:
    unknown = sorted(set(header) - set(known))
    if unknown:
        raise ShapeError(
            f"unknown column(s) for {kind}: {', '.join(unknown)}; "
            f"expected some of: {', '.join(known)} (docs/import.md)"
        )


# --- the omo shape ----------------------------------------------------------------------------


def omo_records(
    kind: str, rows: Iterable[tuple[int, Row]], tz: tzinfo
) -> tuple[list[Record], list[RowError]]:
    if kind == "orders":
        return _omo_orders(rows, tz)
    build = {"stores": _store, "products": _product, "members": _member, "events": _event,
             "points": _points, "tiers": _tier, "coupons": _coupon}[kind]  # fmt: skip
    records: list[Record] = []
    checked = False
    for n, row in rows:
        if not checked:
            extra = {"events": ("properties",), "members": MEMBER_EXPORT_ONLY}.get(kind, ())
            _check_header(row, COLUMNS[kind] + extra, kind)
            checked = True
        records.append(build(n, row, tz))
    return records, []


def _store(n: int, row: Row, tz: tzinfo) -> Record:
    data = {k: row.get(k) for k in STORE_COLUMNS if row.get(k) is not None}
    if "is_active" in data:
        data["is_active"] = parse_bool(data["is_active"])
    return Record([n], data)


def _product(n: int, row: Row, tz: tzinfo) -> Record:
    data = {k: row.get(k) for k in PRODUCT_COLUMNS if row.get(k) is not None}
    if "is_active" in data:
        data["is_active"] = parse_bool(data["is_active"])
    return Record([n], data)


def _member(n: int, row: Row, tz: tzinfo) -> Record:
    idents, cols = identifiers(row)
    data: dict[str, Any] = {"identifiers": idents}
    for k in MEMBER_COLUMNS:
        v = row.get(k)
        if v is None or k in IDENTIFIER_COLUMNS or k.startswith("consent_"):
            continue
        data[k] = parse_datetime(v, tz) if k == "joined_at" else v
    consents = {
        k[8:]: parse_bool(row[k])
        for k in MEMBER_COLUMNS
        if k.startswith("consent_") and row.get(k) is not None
    }
    if consents:
        data["consents"] = consents
    columns = {"consents": "consent_*"}
    return Record([n], data, columns=columns, ident_columns=cols)


def _points(n: int, row: Row, tz: tzinfo) -> Record:
    def when(v: Any) -> Any:
        return parse_datetime(v, tz)

    until = {"earned_at": when, "available_at": when, "expires_at": lambda v: parse_until(v, tz)}
    return _members_row(n, row, POINTS_COLUMNS, until)


def _tier(n: int, row: Row, tz: tzinfo) -> Record:
    return _members_row(n, row, TIER_COLUMNS, {"until": parse_day})


def _coupon(n: int, row: Row, tz: tzinfo) -> Record:
    return _members_row(n, row, COUPON_COLUMNS, {
        "valid_from": lambda v: parse_datetime(v, tz), "valid_until": lambda v: parse_until(v, tz),
    })  # fmt: skip


def _members_row(
    n: int, row: Row, columns: tuple[str, ...], convert: dict[str, Callable[[Any], Any]]
) -> Record:
    """A row about one member (a balance, a level): its identifiers, MEMBER_REF, the rest."""
    idents, cols = identifiers(row)
    data: dict[str, Any] = {k: row.get(k) for k in columns
                            if row.get(k) is not None and k not in IDENTIFIER_COLUMNS}  # fmt: skip
    if idents:
        data["identifiers"] = idents
    for k, parse in convert.items():
        if k in data:
            data[k] = parse(data[k])
    return Record([n], data, ident_columns=cols, member_ref=row.get(MEMBER_REF))


def _event(n: int, row: Row, tz: tzinfo) -> Record:
    idents, cols = identifiers(row)
    skip = {*IDENTIFIER_COLUMNS, MEMBER_REF}
    data: dict[str, Any] = {k: v for k, v in row.items() if v is not None and k not in skip}
    if idents:
        data["identifiers"] = idents
    if "occurred_at" in data:
        data["occurred_at"] = parse_datetime(data["occurred_at"], tz)
    return Record([n], data, ident_columns=cols, member_ref=row.get(MEMBER_REF))


def _omo_orders(rows: Iterable[tuple[int, Row]], tz: tzinfo) -> tuple[list[Record], list[RowError]]:
    records: dict[tuple[str, str], Record] = {}
    first_values: dict[tuple[str, str], tuple[Any, ...]] = {}
    errors: list[RowError] = []
    order_cols: list[str] = []
    line_cols: list[str] = []
    known: set[str] = set()
    for n, row in rows:
        if "lines" in row:  # one nested order per JSON line
            data = dict(row)
            ref = data.pop(MEMBER_REF, None)
            data["ordered_at"] = parse_datetime(data.get("ordered_at"), tz)
            lines = [n] * len(row.get("lines") or [])
            nested = Record([n], data, line_rows=lines, member_ref=ref)
            records[(str(row.get("channel")), str(row.get("external_id") or f"row {n}"))] = nested
            continue
        if not order_cols:
            _check_header(row, COLUMNS["orders"], "orders")
            order_cols = [k for k in ORDER_COLUMNS if k not in IDENTIFIER_COLUMNS]
            line_cols = list(LINE_COLUMNS)
            known = set(COLUMNS["orders"])
        elif not known.issuperset(row):  # JSONL rows each bring their own keys
            for k in sorted(set(row) - known):
                errors.append(RowError(n, k, "unknown column (docs/import.md)"))
        key = (str(row.get("channel")), str(row.get("external_id")))
        if row.get("external_id") is None:
            errors.append(RowError(n, "external_id", "required: the order's id in its channel"))
            continue
        rec = records.get(key)
        line = {k: row[k] for k in line_cols if row.get(k) is not None}
        if rec is None:
            idents, cols = identifiers(row)
            data = {k: row[k] for k in order_cols if row.get(k) is not None}
            data["ordered_at"] = parse_datetime(data.get("ordered_at"), tz)
            data["customer"] = idents
            data["lines"] = []
            rec = Record([n], data, ident_columns=cols, member_ref=row.get(MEMBER_REF))
            records[key] = rec
            first_values[key] = tuple(map(row.get, order_cols))
        else:
            # continuation rows repeat the order's fields or leave them empty
            values = tuple(map(row.get, order_cols))
            if values != first_values[key]:
                _check_continuation(n, row, order_cols, first_values[key], rec, tz, errors)
            rec.rows.append(n)
        rec.data["lines"].append(line)
        rec.line_rows.append(n)
    return list(records.values()), errors


def _check_continuation(
    n: int, row: Row, order_cols: list[str], first: tuple[Any, ...], rec: Record, tz: tzinfo,
    errors: list[RowError],
) -> None:  # fmt: skip
    for k, was in zip(order_cols, first, strict=True):
        v = row.get(k)
        if v is None or was is None or v == was:
            continue
        if k == "ordered_at" and parse_datetime(v, tz) == rec.data[k]:
            continue
        errors.append(
            RowError(
                n, k, f"{v!r} differs from {was!r} on row {rec.rows[0]}, the order's first row"
            )
        )
