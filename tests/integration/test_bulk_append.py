"""The bulk append path (demo loader, bulk import) on both databases, and the collector pause."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from omo.commerce.models import Order, OrderContact
from omo.ingest import bulk
from omo.shared.gcpause import collector_paused

ORDER = ("id", "channel", "external_id", "payload_hash", "member_id", "store_id", "fulfilment",
         "status", "ordered_at", "currency", "subtotal", "discount_total", "shipping_fee",
         "total", "created_at")  # fmt: skip


def test_tuples_land_with_their_types_converted(engine: sa.Engine) -> None:
    at = datetime(2026, 3, 1, 2, 3, 4, 500, tzinfo=UTC)
    orders: sa.Table = Order.__table__  # type: ignore[assignment]
    with engine.begin() as conn:
        first = bulk.take_ids(conn, orders, 2)
        rows = [
            (i, "web", f"W-{i}", "-", None, None, "delivery", "completed", at, "TWD",
             1250, 0, 60, 1310, at)
            for i in first
        ]  # fmt: skip
        assert bulk.append_tuples(conn, orders, ORDER, rows) == 2
        bulk.reset_sequences(conn, [orders])
    with engine.connect() as conn:
        got = conn.execute(sa.select(Order.ordered_at, Order.total, Order.refunded_total)).all()
    # what the ORM reads back: the aware UTC time, money from cents, the server default
    assert [(r.ordered_at, str(r.total), r.refunded_total) for r in got] == [(at, "13.10", 0)] * 2


def test_a_column_left_out_must_be_nullable_or_defaulted(engine: sa.Engine) -> None:
    contacts: sa.Table = OrderContact.__table__  # type: ignore[assignment]
    with engine.begin() as conn, pytest.raises(ValueError, match="no value for kind"):
        bulk.append_tuples(conn, contacts, ("id", "order_id", "namespace", "value"), [])
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(contacts)).scalar() == 0


def test_rows_left_without_an_id_are_numbered_by_the_database(engine: sa.Engine) -> None:
    orders: sa.Table = Order.__table__  # type: ignore[assignment]
    contacts: sa.Table = OrderContact.__table__  # type: ignore[assignment]
    at = datetime(2026, 3, 1, tzinfo=UTC)
    with engine.begin() as conn:
        (oid,) = bulk.take_ids(conn, orders, 1)
        row = (oid, "web", "W-1", "-", None, None, "delivery", "completed", at, "TWD",
               100, 0, 0, 100, at)  # fmt: skip
        bulk.append_tuples(conn, orders, ORDER, [row])
        bulk.reset_sequences(conn, [orders])
        names = ("order_id", "kind", "namespace", "value")
        bulk.append_tuples(
            conn, contacts, names, [(oid, "email", "", f"a{n}@b.tw") for n in (1, 2)]
        )
    with engine.begin() as conn:
        # a later insert through the ORM's table takes the next id, not one of theirs
        conn.execute(
            sa.insert(contacts).values(order_id=oid, kind="email", namespace="", value="c@b.tw")
        )
    with engine.connect() as conn:
        ids = conn.execute(sa.select(contacts.c.id).order_by(contacts.c.id)).scalars().all()
    assert len(set(ids)) == 3 and all(isinstance(i, int) for i in ids)


def test_the_collector_pause_nests_and_restores_what_it_found() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("bulk work failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: left off
    finally:
        gc.enable()


@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.timezones()))
def test_datetimes_are_stored_as_sqlalchemy_stores_them_on_sqlite(value: datetime) -> None:
    """What bulk writes for a UtcDateTime is the text SQLAlchemy's SQLite DateTime writes for
    the same instant in UTC, so both read back alike."""
    utc = value.astimezone(UTC).replace(tzinfo=None)
    dialect = sqlite.dialect()
    stored = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)(utc)  # type: ignore[misc]
    assert bulk._sqlite_utc(value) == stored
