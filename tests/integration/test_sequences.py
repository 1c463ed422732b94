"""Ids taken from a sequence before the row is written (shared/sequences.py): on PostgreSQL a
number read ahead is kept across the transaction's writes and taken once; on SQLite there are
none and the row is written with RETURNING."""

from __future__ import annotations

import sqlalchemy as sa

from omo.commerce.models import Order
from omo.db import UnitOfWork
from omo.shared import sequences
from omo.shared.prepared import Prepared
from tests.integration.test_prepared import STORE, order

ORDERS: sa.Table = Order.__table__  # type: ignore[assignment]
INSERT = Prepared(sa.insert(ORDERS))


def test_no_ids_ahead_where_writes_are_not_queued(uow: UnitOfWork, db_url: str) -> None:
    with uow.write() as s:
        sequences.id_ahead(s, ORDERS)
        first, second = sequences.next_id(s, ORDERS), sequences.next_id(s, ORDERS)
    if db_url.startswith("sqlite"):
        assert (first, second) == (None, None)
    else:
        assert first is not None and second is not None and second > first


def test_a_number_read_ahead_outlives_writes_and_is_taken_once(
    uow: UnitOfWork, db_url: str
) -> None:
    if db_url.startswith("sqlite"):
        return  # nothing read ahead (the test above)
    other = sa.create_engine(uow.engine.url, poolclass=sa.pool.NullPool)
    try:
        with uow.write() as s:
            STORE.first(s, {"code": "x"})
            sequences.id_ahead(s, ORDERS)
            sequences.id_ahead(s, ORDERS)  # asked twice, read once
            STORE.first(s, {"code": "y"})  # sends it
            with other.connect() as conn:  # the sequence moves on meanwhile
                later = conn.execute(sa.text("SELECT nextval('orders_id_seq')")).scalar_one()
            INSERT.execute(s, order(1))  # a write drops reads ahead, not this one
            kept = sequences.next_id(s, ORDERS)
            fresh = sequences.next_id(s, ORDERS)
            INSERT.execute_later(s, {**order(2), "id": kept})
        assert kept is not None and fresh is not None
        assert kept < later < fresh  # the first was read before the other's, and only once
    finally:
        other.dispose()
    with uow.read() as s:
        assert s.scalar(sa.select(ORDERS.c.id).where(ORDERS.c.external_id == "P-2")) == kept
