"""Reads ahead (Prepared.ahead): on PostgreSQL sent with the transaction's next statement and
kept for the same read; anything written in between drops them, so a read never answers from
before a write the program made first. On SQLite they cost nothing and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from omo.commerce.models import Order
from omo.db import UnitOfWork
from omo.shared import libpq
from omo.shared.prepared import Prepared
from tests.integration.test_prepared import STORE, order

INSERT = Prepared(sa.insert(Order.__table__))
COUNT = Prepared(sa.select(sa.func.count()).select_from(Order.__table__))
BY_ID = Prepared(
    sa.select(Order.__table__.c.external_id).where(
        Order.__table__.c.external_id == sa.bindparam("e")
    )
)


def kept(session: Session) -> dict[Any, Any]:
    """The reads ahead whose rows wait on the session's connection (none on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return {}
    held = libpq._HELD.get(session.connection().connection.driver_connection)
    return dict(held.ahead) if held is not None else {}


def test_a_read_ahead_is_answered_from_the_round_trip_it_went_in(
    uow: UnitOfWork, db_url: str
) -> None:
    uow.run(lambda s: INSERT.execute(s, order(1)))
    postgres = db_url.startswith("postgres")
    with uow.write() as s:
        STORE.first(s, {"code": "x"})  # the transaction is open
        COUNT.ahead(s)
        BY_ID.ahead(s, {"e": "P-1"})
        assert STORE.first(s, {"code": "y"}) is None  # sends the two with it
        assert len(kept(s)) == (2 if postgres else 0)
        assert COUNT.scalar(s) == 1
        assert BY_ID.rows(s, {"e": "P-2"}) == []  # other values: read now
        assert len(kept(s)) == (1 if postgres else 0)
        assert BY_ID.rows(s, {"e": "P-1"}) == [("P-1",)]
        assert kept(s) == {}


def queued(session: Session) -> list[Any]:
    """What waits on the session's connection to go with its next statement (none on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    held = libpq._HELD.get(session.connection().connection.driver_connection)
    return list(held.queued) if held is not None else []


def test_a_read_asked_ahead_twice_goes_once(uow: UnitOfWork, db_url: str) -> None:
    """A checkout names its pricing reads before the retry's look-up and again as it prices:
    the second time they are queued or kept already, and nothing is sent twice."""
    one = 1 if db_url.startswith("postgres") else 0
    with uow.write() as s:
        STORE.first(s, {"code": "x"})
        COUNT.ahead(s)
        COUNT.ahead(s)
        assert len(queued(s)) == one
        STORE.first(s, {"code": "y"})  # sends it
        COUNT.ahead(s)  # kept: not queued again
        assert (len(queued(s)), len(kept(s))) == (0, one)
        assert COUNT.scalar(s) == 0
        COUNT.ahead(s)  # taken by that read: asked anew
        assert (len(queued(s)), len(kept(s))) == (one, 0)
        INSERT.execute(s, order(1))  # sends it and drops its rows
        COUNT.ahead(s)
        assert len(queued(s)) == one
        assert COUNT.scalar(s) == 1


def test_a_write_in_between_drops_what_was_read_ahead(uow: UnitOfWork) -> None:
    """Every way a use case writes: each adds the n-th order, which the count must see."""
    writes = {
        "prepared": lambda s, n: INSERT.execute(s, order(n)),
        "queued": lambda s, n: INSERT.execute_later(s, order(n)),
        "many": lambda s, n: INSERT.execute_many(s, [order(n)]),
        "orm": lambda s, n: (s.add(Order(**order(n))), s.flush()),
        "core": lambda s, n: s.execute(sa.insert(Order.__table__), order(n)),
    }
    with uow.write() as s:
        STORE.first(s, {"code": "x"})
        for n, (how, write) in enumerate(writes.items(), start=1):
            COUNT.ahead(s)
            STORE.first(s, {"code": "x"})  # the read ahead is answered and kept
            write(s, n)
            assert COUNT.scalar(s) == n, how  # read again, after the write
            assert kept(s) == {}, how


def test_a_read_sent_after_the_writes_of_its_round_trip_is_kept(uow: UnitOfWork) -> None:
    """A sale's referral check goes with its writes and the tier's window: read after every
    write of its pipeline, it saw them, and its rows are kept; one read before a write is not."""
    with uow.write() as s:
        STORE.first(s, {"code": "x"})
        INSERT.execute_later(s, order(1))
        COUNT.ahead(s)
        STORE.first(s, {"code": "y"})  # [order 1, count, store] in one round trip
        assert len(kept(s)) == (1 if s.get_bind().dialect.name == "postgresql" else 0)
        assert COUNT.scalar(s) == 1
        COUNT.ahead(s)
        INSERT.execute_later(s, order(2))  # queued after the read: it drops it
        STORE.first(s, {"code": "y"})
        assert kept(s) == {}
        assert COUNT.scalar(s) == 2


def test_a_rollback_forgets_what_was_read_ahead(uow: UnitOfWork) -> None:
    with Session(uow.engine) as s:
        with s.begin():
            STORE.first(s, {"code": "x"})
            COUNT.ahead(s)
            STORE.first(s, {"code": "x"})
            s.rollback()
        with s.begin():
            STORE.first(s, {"code": "x"})
            assert kept(s) == {}
            INSERT.execute(s, order(1))
            assert COUNT.scalar(s) == 1


def test_reads_ahead_may_open_the_transaction(uow: UnitOfWork) -> None:
    """A quote's reads: the first of them carries the BEGIN (read-only here), whichever way
    the next statement goes."""
    uow.run(lambda s: INSERT.execute(s, order(1)))
    for next_statement in (
        lambda s: STORE.first(s, {"code": "x"}),  # ours
        lambda s: s.execute(sa.text("SELECT 1")),  # the cursor's
    ):
        with uow.read() as s:
            COUNT.ahead(s)
            next_statement(s)
            assert COUNT.scalar(s) == 1
            assert kept(s) == {}
            if s.get_bind().dialect.name == "postgresql":
                driver = s.connection().connection.driver_connection
                assert driver.pgconn.transaction_status == libpq.pq.TransactionStatus.INTRANS
                assert s.execute(sa.text("SHOW transaction_read_only")).scalar() == "on"


LOCK = Prepared(
    sa.select(Order.__table__.c.id)
    .where(Order.__table__.c.external_id == sa.bindparam("e"))
    .with_for_update()
)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_lock_read_ahead_first_is_held_by_the_transaction(uow: UnitOfWork) -> None:
    """Sent before psycopg's own statement, it goes after a BEGIN, not in a transaction of its
    own that would let the lock go at once."""
    uow.run(lambda s: INSERT.execute(s, order(1)))
    other = sa.create_engine(uow.engine.url, poolclass=sa.pool.NullPool)
    try:
        with uow.write() as s:
            LOCK.ahead(s, {"e": "P-1"})
            s.execute(sa.text("SELECT 1"))  # through the cursor: the queue goes first
            with other.connect() as conn, pytest.raises(sa.exc.OperationalError, match="lock"):
                conn.execute(sa.text(
                    "SELECT id FROM orders WHERE external_id = 'P-1' FOR UPDATE NOWAIT"
                ))  # fmt: skip
            assert LOCK.scalar(s, {"e": "P-1"}) is not None
    finally:
        other.dispose()


def test_only_a_select_is_read_ahead(uow: UnitOfWork) -> None:
    with uow.write() as s, pytest.raises(TypeError, match="only a SELECT"):
        INSERT.ahead(s, order(1))
