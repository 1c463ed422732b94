"""The members as record linkage sees them: one row per active member with its comparison keys,
read by ranges of member ids (one read transaction and one core each) and handed over as an
Arrow table."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from omo.commerce import service as commerce
from omo.db import UnitOfWork
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


def member_records(uow: UnitOfWork) -> pa.Table:
    """Every active member as a linkage record (unique_id = member id), in member order.

    The members are read in one range of ids per core, each range in a read transaction of
    its own: side by side in forked children where this process may fork, one after the other
    here where it may not (a process with threads). At 1M on two cores that took 9.5-10.3 s,
    against 13.8-14.3 s when this process read every row alone and handed half to a forked
    child: the read had the machine to itself, and then both processes paid for copying the
    memory pages whose reference counts they touched.

    The ranges' transactions start together but are not one snapshot: a write that commits
    between their starts can be seen by one range and not by another. That is harmless here:
    each record is one member's row as of one moment, and every merge a run decides locks its
    members and checks them again."""
    with collector_paused():  # a million rows of keys: nothing cyclic to collect
        with uow.read() as session:
            span = members.id_span(session)
        if span is None:
            return SCHEMA.empty_table()
        n = forked.cores() if _own_file(uow) else 1
        if n == 1:
            return _records(uow, None)
        low, high = span
        edges = [low - 1 + (high - low + 1) * k // n for k in range(n + 1)]
        here = os.getpid()

        def part(ids: tuple[int, int], _k: int) -> pa.Table:
            if os.getpid() != here:  # a forked child: the parent's connections are not its own
                _INHERITED.append(uow.engine.pool)  # kept, so none is closed from here
                uow.engine.dispose(close=False)
            return _records(uow, ids)

        ranges = list(itertools.pairwise(edges))
        return pa.concat_tables(forked.iter_runs(part, ranges, n))


_INHERITED: list[Any] = []  # a forked child's copy of the parent's pool, never to be used


def _own_file(uow: UnitOfWork) -> bool:
    """Whether another process can open the database itself (not an in-memory SQLite one)."""
    url = uow.engine.url
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


def _records(uow: UnitOfWork, ids: tuple[int, int] | None) -> pa.Table:
    """The records of the members with ids[0] < id <= ids[1] (all when ids is None)."""
    with uow.read() as session:
        stores = commerce.stores_by_member(session, ids)
        rows = list(members.matching_profiles(session, ids))
    return _keyed(rows, stores)


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
