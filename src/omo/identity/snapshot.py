"""The members as record linkage sees them: one row per active member with its comparison keys,
read in one read transaction (a consistent snapshot) and handed over as an Arrow table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from omo.commerce import service as commerce
from omo.identity.matchkeys import address_keys_many, name_keys, phone_key
from omo.members import service as members
from omo.shared import forked
from omo.shared.gcpause import collector_paused

SCHEMA = pa.schema(
    [
        ("unique_id", pa.int64()),
        ("name_cjk", pa.string()),
        ("surname", pa.string()),
        ("roman_wg", pa.string()),
        ("roman_py", pa.string()),
        ("name_one_apart", pa.list_(pa.string())),
        ("name_tokens", pa.list_(pa.string())),
        ("birth_date", pa.string()),
        ("gender", pa.string()),
        ("city", pa.string()),
        ("district", pa.string()),
        ("address", pa.string()),
        ("street", pa.string()),
        ("house_number", pa.string()),
        ("street_one_apart", pa.list_(pa.string())),
        ("postcode", pa.string()),
        ("phone", pa.string()),
        ("stores", pa.list_(pa.int64())),
    ]
)


def member_records(session: Session) -> pa.Table:
    """Every active member as a linkage record (unique_id = member id)."""
    with collector_paused():  # a million rows of keys: nothing cyclic to collect
        return _records(session)


def _records(session: Session) -> pa.Table:
    stores = commerce.stores_by_member(session)
    rows = list(members.matching_profiles(session))
    # the keys are pure Python work on rows read once here: each core takes a share
    parts = forked.map_parts(lambda part, _at: _keyed(part, stores), rows, forked.cores())
    return pa.concat_tables(parts) if parts else SCHEMA.empty_table()


def _keyed(rows: Sequence[Any], stores: dict[int, list[int]]) -> pa.Table:
    """These members' records with their comparison keys."""
    names = [name_keys(r.name) for r in rows]  # cached: names repeat
    places = address_keys_many((r.city, r.district, r.address_line) for r in rows)

    def listed(values: Iterable[tuple[str, ...] | None]) -> list[tuple[str, ...] | None]:
        # Arrow takes the tuples as they are: a list made of each cost 0.6 s per 500k rows
        return [v or None for v in values]

    def bought(r: Any) -> list[int] | None:
        at = set(stores.get(r.id, ()))
        if r.join_store_id is not None:
            at.add(r.join_store_id)
        return sorted(at) or None

    cols: dict[str, list[Any]] = {
        "unique_id": [r.id for r in rows],
        "name_cjk": [n.cjk for n in names],
        "surname": [n.surname for n in names],
        "roman_wg": [n.roman_wg for n in names],
        "roman_py": [n.roman_py for n in names],
        "name_one_apart": listed(n.one_apart for n in names),
        "name_tokens": listed(n.tokens for n in names),
        "birth_date": [r.birth_date or None for r in rows],
        "gender": [r.gender if r.gender in ("female", "male") else None for r in rows],
        "city": [a.city for a in places],
        "district": [a.district for a in places],
        "address": [a.line for a in places],
        "street": [a.street for a in places],
        "house_number": [a.house_number for a in places],
        "street_one_apart": listed(a.street_one_apart for a in places),
        "postcode": [(r.postal_code or "").replace(" ", "") or None for r in rows],
        "phone": [phone_key(r.phone) for r in rows],
        "stores": [bought(r) for r in rows],
    }
    return pa.table(cols, schema=SCHEMA)
