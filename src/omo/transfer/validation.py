"""Import, step 1: every row checked with the API's schemas and against the database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from omo.commerce.models import Order, Store
from omo.commerce.schemas import CODE, ProductUpsert, StoreUpsert
from omo.coupons.imported import ImportedCoupon
from omo.db import UnitOfWork
from omo.events.schemas import EventIn
from omo.ingest import service as ingest
from omo.members.identifiers import InvalidIdentifier
from omo.members.schemas import MemberUpsert
from omo.points.schemas import OpeningBalance
from omo.shared import clock
from omo.shared.errors import DomainError
from omo.shared.sqlmatch import keys_in
from omo.tiers.grants import ImportedLevel
from omo.transfer.formats import Row, write_csv
from omo.transfer.loyalty_checks import LOYALTY_CHECKS
from omo.transfer.orderfacts import parse_member_ref, row_errors
from omo.transfer.results import Valid, chunks, field_path
from omo.transfer.shapes import MEMBER_REF, Record, RowError

# orders have their own step (orderfacts.py): validated on every core
SCHEMAS: dict[str, type[BaseModel]] = {
    "stores": StoreUpsert,
    "products": ProductUpsert,
    "members": MemberUpsert,
    "events": EventIn,
    "points": OpeningBalance,
    "tiers": ImportedLevel,
    "coupons": ImportedCoupon,
}
KEYS = {"stores": "code", "products": "sku"}
# what the API takes for the keys in its paths (PUT /stores/{code}, /products/{sku}): they
# were only looked for, and a longer one than its column was PostgreSQL's DataError at the
# write (SQLite kept it); a store whose code no path can name could take no sale
KEY_RULES = {
    "stores": (re.compile(CODE), "1 to 32 letters, digits, _ . or -, from a letter or digit"),
    "products": (re.compile(r"^.{1,64}$", re.DOTALL), "at most 64 characters"),
}


# --- validation -------------------------------------------------------------------------------


def validate(kind: str, records: list[Record], region: str) -> tuple[list[Valid], list[RowError]]:
    """Each record checked with its area's schema (orders: orderfacts.read_orders)."""
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
        if key and not KEY_RULES[kind][0].fullmatch(str(ident)):
            errors.append(RowError(rec.rows[0], key, KEY_RULES[kind][1]))
            continue
        try:
            model = schema.model_validate(data)
        except ValidationError as exc:
            errors.extend(row_errors(rec, exc))
            continue
        item = Valid(rec, (ident, model) if key else model)
        try:
            if isinstance(
                model, MemberUpsert | EventIn | OpeningBalance | ImportedLevel | ImportedCoupon
            ):
                item.idents = ingest.normalise_all(
                    model.identifiers, field="identifiers", region=region
                )
        except DomainError as exc:
            row, column = rec.locate(tuple(field_path(exc.field)))
            errors.append(RowError(row, column, exc.message))
            continue
        if rec.member_ref:
            try:
                item.member_ref = parse_member_ref(rec.member_ref, region)
            except InvalidIdentifier as exc:
                errors.append(RowError(rec.rows[0], MEMBER_REF, str(exc)))
                continue
        dup, column = (ident, key) if key else _identity_of(model)
        if dup is not None:
            if dup in seen:
                errors.append(RowError(rec.rows[0], column, f"repeats row {seen[dup]}"))
                continue
            seen[dup] = rec.rows[0]
        valid.append(item)
    return valid, errors


def _identity_of(model: BaseModel) -> tuple[Any, str]:
    """What one row of a kind may not repeat in a file, and its column."""
    if isinstance(model, EventIn):
        return model.event_id, "id"
    if isinstance(model, OpeningBalance):
        return model.reference, "reference"
    if isinstance(model, ImportedCoupon):
        return model.stored_code, "code"  # two spellings of one code are one code
    return None, ""


def check_against_database(
    uow: UnitOfWork, kind: str, valid: list[Valid], currency: str
) -> list[RowError]:
    if kind in LOYALTY_CHECKS:
        return LOYALTY_CHECKS[kind](uow, valid)
    if kind not in ("orders", "members", "events"):
        return []
    errors: list[RowError] = []
    now = clock.now()
    with uow.read() as session:
        stores = {code for (code,) in session.execute(select(Store.code))}
        known: dict[tuple[str, str], str] = {}
        if kind == "orders":
            keys = [v.model.key for v in valid]
            for chunk in chunks(keys, 2_000):
                rows = session.execute(
                    select(Order.channel, Order.external_id, Order.payload_hash).where(
                        keys_in((Order.channel, Order.external_id), chunk)
                    )
                )
                known.update({(c, e): h for c, e, h in rows})
    for v in valid:
        m = v.model
        store = getattr(m, "join_store" if kind == "members" else "store", None)
        if store and store not in stores:
            field = "join_store" if kind == "members" else "store"
            errors.append(v.error(field, f"no store with code {store!r}"))
        if kind == "orders":
            if m.currency != currency:
                errors.append(v.error("currency", f"this installation books {currency}"))
            if m.ordered_at > now + ingest.FUTURE_SLACK:
                errors.append(v.error("ordered_at", "lies in the future"))
            held = known.get(m.key)
            if held is not None and held != v.digest:
                errors.append(v.error("external_id", "already recorded with different content"))
            v.recorded = held is not None
        if kind == "events" and m.occurred_at > now + ingest.FUTURE_SLACK:
            errors.append(v.error("occurred_at", "lies in the future"))
    return errors


def write_rejects(path: Path, rows: dict[int, Row], errors: list[RowError]) -> None:
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
