"""Writes whose answer nobody reads (Prepared.execute_later): on PostgreSQL queued and sent with
the transaction's next statement or before its COMMIT; on SQLite run at once. Either way every
later statement sees them, their errors are SQLAlchemy's, and a rollback forgets them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from omo.commerce.models import Order
from omo.db import UnitOfWork, make_engine
from omo.settings import Settings
from omo.shared import libpq
from omo.shared.prepared import Prepared
from omo.testing.tcpproxy import TcpProxy
from tests.integration.test_prepared import STORE, order

INSERT = Prepared(sa.insert(Order.__table__))
COUNT = Prepared(sa.select(sa.func.count()).select_from(Order.__table__))
ORM_COUNT = sa.select(sa.func.count(Order.id))
DUPLICATE = r"(?i)unique|duplicate"


def then(*steps: Callable[[], object]) -> None:
    for step in steps:
        step()


def queued(session: Session) -> list[Any]:
    """What waits to be sent on the session's connection (nothing on SQLite)."""
    driver = session.connection().connection.driver_connection
    if session.get_bind().dialect.name != "postgresql":
        return []
    held = libpq._HELD.get(driver)
    return list(held.queued) if held is not None else []


def test_every_later_statement_sees_the_writes_and_commit_sends_the_last(
    uow: UnitOfWork, db_url: str
) -> None:
    with uow.write() as s:
        STORE.first(s, {"code": "x"})  # the transaction is open
        INSERT.execute_later(s, order(1))
        assert len(queued(s)) == (1 if db_url.startswith("postgres") else 0)
        assert COUNT.scalar(s) == 1  # a prepared statement: in the same round trip
        assert queued(s) == []
        INSERT.execute_later(s, order(2))
        assert s.scalar(ORM_COUNT) == 2  # the ORM's, through the cursor
        INSERT.execute_later(s, order(3), order(4))
        assert s.execute(sa.text("SELECT count(*) FROM orders")).scalar() == 4  # text
        INSERT.execute_later(s, order(5), order(6))  # nothing after these but COMMIT
    with uow.read() as s:
        assert COUNT.scalar(s) == 6


def test_an_error_queued_is_raised_at_the_next_statement_as_sqlalchemys(uow: UnitOfWork) -> None:
    uow.run(lambda s: INSERT.execute(s, order(1)))
    with uow.write() as s:
        STORE.first(s, {"code": "x"})
        with pytest.raises(sa.exc.IntegrityError, match=DUPLICATE):  # SQLite: at the first
            then(lambda: INSERT.execute_later(s, order(2), order(1)), lambda: COUNT.scalar(s))
        s.rollback()
    with uow.write() as s:
        STORE.first(s, {"code": "x"})
        with pytest.raises(sa.exc.IntegrityError, match=DUPLICATE):  # before the ORM's is sent
            then(lambda: INSERT.execute_later(s, order(1)), lambda: s.scalar(ORM_COUNT))
        s.rollback()
    with uow.read() as s:
        assert COUNT.scalar(s) == 1


def test_an_error_queued_until_commit_is_a_lost_race_the_run_retries(uow: UnitOfWork) -> None:
    uow.run(lambda s: INSERT.execute(s, order(1)))
    tries: list[int] = []

    def sale(s: Session) -> int:
        tries.append(1)
        STORE.first(s, {"code": "x"})
        INSERT.execute_later(s, order(2 if len(tries) > 1 else 1))  # the first try lost
        return len(tries)

    assert uow.run(sale) == 2
    with uow.read() as s:
        assert COUNT.scalar(s) == 2


def test_a_rollback_forgets_what_was_queued(uow: UnitOfWork) -> None:
    with Session(uow.engine) as s:
        with s.begin():
            STORE.first(s, {"code": "x"})
            INSERT.execute_later(s, order(1), order(2))
            s.rollback()
        with s.begin():
            STORE.first(s, {"code": "x"})
            assert queued(s) == []
            assert COUNT.scalar(s) == 0
            INSERT.execute_later(s, order(3))
    with uow.read() as s:
        assert COUNT.scalar(s) == 1


def test_outside_a_transaction_it_runs_at_once(uow: UnitOfWork) -> None:
    uow.run(lambda s: INSERT.execute(s, order(1)))
    with uow.write() as s:
        with pytest.raises(sa.exc.IntegrityError):
            INSERT.execute_later(s, order(1))  # the first statement: through the cursor
        s.rollback()


def test_an_engine_that_would_not_send_the_queue_runs_the_write_at_once(db_url: str) -> None:
    """An engine not made by make_engine has no events to send a queue before COMMIT."""
    engine = sa.create_engine(db_url)
    try:
        with Session(engine) as s, s.begin():
            STORE.first(s, {"code": "x"})
            INSERT.execute_later(s, order(1))
            assert queued(s) == []
        with Session(engine) as s, s.begin():
            assert COUNT.scalar(s) == 1
    finally:
        engine.dispose()


def test_an_engine_disposed_and_its_copies_still_queue(engine: sa.Engine, db_url: str) -> None:
    engine.dispose()  # a new pool
    copy = engine.execution_options(isolation_level="SERIALIZABLE")
    with Session(copy) as s, s.begin():
        STORE.first(s, {"code": "x"})
        INSERT.execute_later(s, order(1))
        assert len(queued(s)) == (1 if db_url.startswith("postgres") else 0)
    with Session(engine) as s, s.begin():
        assert COUNT.scalar(s) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_the_last_writes_go_with_commit_in_one_round_trip(db_url: str) -> None:
    """Counted on the wire: the queued writes and COMMIT are one round trip (psycopg's own
    commit then finds the connection idle and sends nothing); reads still queued ahead are
    not sent; the next transaction on the connection begins as usual."""
    url = sa.engine.make_url(db_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    engine = make_engine(Settings(database_url=url.set(port=proxy.port).render_as_string(False)))
    try:
        uow = UnitOfWork(engine)
        uow.run(lambda s: STORE.first(s, {"code": "warm"}))  # connects, prepares
        with uow.write() as s:
            STORE.first(s, {"code": "x"})  # the transaction is open
            INSERT.execute_later(s, order(1), order(2))
            COUNT.ahead(s)  # never read: the transaction ends first
            before = proxy.round_trips
        assert proxy.round_trips - before == 1
        with uow.write() as s:
            assert COUNT.scalar(s) == 2
            INSERT.execute_later(s, order(3))
        with uow.read() as s:
            assert COUNT.scalar(s) == 3
    finally:
        engine.dispose()
        proxy.close()
