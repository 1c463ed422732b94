"""Prepared statements straight on libpq (PostgreSQL): in the transaction, prepared once per
connection, errors as SQLAlchemy's, and not used where psycopg is told not to prepare."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy.orm import Session

from omo.commerce.models import Order
from omo.db import UnitOfWork, make_engine
from omo.settings import Settings
from omo.shared import libpq
from omo.shared.prepared import Prepared
from tests.integration.test_prepared import INSERT_ORDER, STORE, order

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("db_url", ["postgres"], indirect=True),  # PostgreSQL's alone
]

COUNT = sa.select(sa.func.count()).select_from(Order.__table__)


@pytest.fixture
def pg_engine(engine: sa.Engine) -> sa.Engine:
    return engine


def ours(session: Session) -> set[str]:
    """Our statements prepared on the session's connection (psycopg's own are named _pg3_…)."""
    rows = session.execute(sa.text("SELECT name FROM pg_prepared_statements"))
    return {r[0] for r in rows if r[0].startswith("omo_")}


def test_the_first_statement_opens_the_transaction_and_the_rest_stay_in_it(
    pg_engine: sa.Engine,
) -> None:
    with Session(pg_engine) as session:
        with session.begin():
            INSERT_ORDER.rows(session, order(1))  # BEGIN sent with it, in one round trip
            driver = session.connection().connection.driver_connection
            assert driver.pgconn.transaction_status == pq.TransactionStatus.INTRANS
            assert len(ours(session)) == 1
            INSERT_ORDER.rows(session, order(2))
            session.rollback()
        with session.begin():
            assert session.scalar(COUNT) == 0  # both rolled back: neither ran on its own


def test_the_begin_sent_is_psycopgs_own(pg_engine: sa.Engine, db_url: str) -> None:
    """Read-only, isolation level: as the connection's settings make psycopg's BEGIN."""
    uow = UnitOfWork(pg_engine)
    with uow.read() as session:
        STORE.first(session, {"code": "x"})  # the first statement: BEGIN READ ONLY with it
        with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
            INSERT_ORDER.rows(session, order(1))
    engine = make_engine(Settings(database_url=db_url))
    serializable = engine.execution_options(isolation_level="SERIALIZABLE")
    try:
        with Session(serializable) as session, session.begin():
            STORE.first(session, {"code": "x"})
            level = session.execute(sa.text("SHOW transaction_isolation")).scalar()
            assert level == "serializable"
    finally:
        engine.dispose()


def test_a_statement_is_prepared_once_per_connection(pg_engine: sa.Engine) -> None:
    with Session(pg_engine) as session, session.begin():
        STORE.first(session, {"code": "x"})
        for n in range(5):
            STORE.first(session, {"code": f"S-{n}"})
            INSERT_ORDER.rows(session, order(n))
        first = ours(session)
        assert len(first) == 2
        INSERT_ORDER.rows(session, order(9, total=Decimal("1.10")))
        assert ours(session) == first


def test_an_error_on_libpq_is_sqlalchemys_and_the_run_retries(pg_engine: sa.Engine) -> None:
    uow = UnitOfWork(pg_engine)
    with uow.write() as session:
        INSERT_ORDER.rows(session, order(1))
    with uow.write() as session:
        STORE.first(session, {"code": "x"})
        STORE.first(session, {"code": "y"})
        assert ours(session)  # on libpq from the second statement
        with pytest.raises(sa.exc.IntegrityError, match="duplicate key"):
            INSERT_ORDER.rows(session, order(1))
        session.rollback()
    tries: list[int] = []

    def once(session: Session) -> int:
        tries.append(1)
        STORE.first(session, {"code": "x"})
        if len(tries) == 1:
            INSERT_ORDER.rows(session, order(1))  # a lost race: someone recorded it first
        return len(tries)

    assert uow.run(once) == 2
    bad = Prepared(sa.select(sa.literal_column("no_such_column")).select_from(Order.__table__))
    with uow.write() as session:
        STORE.first(session, {"code": "x"})
        with pytest.raises(sa.exc.ProgrammingError, match="no_such_column"):
            bad.rows(session)  # refused at PREPARE
        session.rollback()


@pytest.fixture
def unprepared(pg_engine: sa.Engine, db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(Settings(database_url=db_url))

    @sa.event.listens_for(engine, "connect")
    def no_prepare(dbapi: object, _record: object) -> None:
        dbapi.prepare_threshold = None  # type: ignore[attr-defined]  # as for PgBouncer

    yield engine
    engine.dispose()


def test_not_used_where_psycopg_is_told_not_to_prepare(unprepared: sa.Engine) -> None:
    with Session(unprepared) as session, session.begin():
        for n in range(3):
            INSERT_ORDER.rows(session, order(n))
        assert ours(session) == set()
        assert session.scalar(COUNT) == 3


def test_what_is_kept_for_a_connection_goes_with_it(pg_engine: sa.Engine) -> None:
    with Session(pg_engine) as session, session.begin():
        STORE.first(session, {"code": "x"})
        STORE.first(session, {"code": "y"})
        driver = session.connection().connection.driver_connection
        gone = weakref.ref(driver)
        assert driver in libpq._HELD
    pg_engine.dispose()  # the pool closes its connections
    del driver, session
    gc.collect()
    assert gone() is None


def test_when_psycopg_deallocates_everything_ours_are_prepared_again(pg_engine: sa.Engine) -> None:
    """After a rollback psycopg sends DEALLOCATE ALL once it has statements of its own."""
    its_own = sa.text("SELECT count(*) FROM stores WHERE code = :c")
    with Session(pg_engine) as session:
        for attempt in range(3):
            with session.begin():
                for n in range(6):  # psycopg prepares a statement on its fifth run
                    session.execute(its_own, {"c": f"S-{n}"})
                INSERT_ORDER.rows(session, order(attempt))
                assert len(ours(session)) == 1
                session.rollback()  # ROLLBACK, then DEALLOCATE ALL
            with session.begin():
                assert ours(session) == set()


def test_statements_dropped_behind_psycopgs_back_fail_once_then_are_prepared_again(
    pg_engine: sa.Engine,
) -> None:
    with Session(pg_engine) as session:
        with session.begin():
            STORE.first(session, {"code": "x"})
            STORE.first(session, {"code": "y"})
            driver = session.connection().connection.driver_connection
            driver.pgconn.exec_(b"DEALLOCATE ALL")  # psycopg does not see it
            with pytest.raises(sa.exc.ProgrammingError, match="does not exist"):
                STORE.first(session, {"code": "z"})
            session.rollback()
        with session.begin():
            STORE.first(session, {"code": "x"})
            assert STORE.first(session, {"code": "y"}) is None
            assert len(ours(session)) == 1


def test_a_read_is_read_only_and_ends_without_dropping_prepared_statements(
    pg_engine: sa.Engine,
) -> None:
    uow = UnitOfWork(pg_engine)
    with pytest.raises(sa.exc.InternalError, match="read-only transaction"), uow.read() as session:
        session.execute(sa.text("DELETE FROM stores"))
    with Session(pg_engine) as session, session.begin():
        STORE.first(session, {"code": "x"})
        STORE.first(session, {"code": "y"})
        held = set(ours(session))
    for _ in range(3):  # the pool hands the one connection back each time
        with uow.read() as session:
            for n in range(6):  # psycopg prepares a statement of its own
                session.execute(
                    sa.text("SELECT count(*) FROM stores WHERE code = :c"), {"c": f"S-{n}"}
                )
    with Session(pg_engine) as session, session.begin():
        STORE.first(session, {"code": "x"})
        assert ours(session) == held  # no DEALLOCATE ALL after the reads


INSERT_PLAIN = Prepared(sa.insert(Order.__table__))  # no RETURNING: run_many's kind


def test_many_rows_are_sent_in_one_pipeline_in_the_transaction(pg_engine: sa.Engine) -> None:
    with Session(pg_engine) as session:
        with session.begin():
            STORE.first(session, {"code": "x"})  # the transaction is open
            before = ours(session)
            INSERT_PLAIN.execute_many(session, [order(n) for n in range(3)])
            assert len(ours(session) - before) == 1  # prepared by us: not psycopg's executemany
            INSERT_PLAIN.execute_many(session, [order(n) for n in range(3, 5)])
            assert len(ours(session) - before) == 1
            assert session.scalar(COUNT) == 5
            session.rollback()
        with session.begin():
            assert session.scalar(COUNT) == 0  # all of it was in the transaction


def test_an_error_in_the_pipeline_is_sqlalchemys_and_leaves_the_connection_usable(
    pg_engine: sa.Engine,
) -> None:
    uow = UnitOfWork(pg_engine)
    uow.run(lambda s: INSERT_ORDER.rows(s, order(1)))
    with uow.write() as session:
        STORE.first(session, {"code": "x"})
        with pytest.raises(sa.exc.IntegrityError, match="duplicate key"):
            INSERT_PLAIN.execute_many(session, [order(5), order(1), order(6)])
        session.rollback()
    with uow.write() as session:
        STORE.first(session, {"code": "x"})
        with pytest.raises(sa.exc.ProgrammingError, match="cannot adapt"):
            INSERT_PLAIN.execute_many(session, [order(7), order(8, payload_hash=object())])
        session.rollback()
    with uow.write() as session:  # the pool's one connection, out of pipeline mode
        STORE.first(session, {"code": "x"})
        INSERT_PLAIN.execute_many(session, [order(5), order(6)])
    with uow.read() as session:
        got = session.scalars(sa.select(Order.external_id).order_by(Order.external_id)).all()
    assert got == ["P-1", "P-5", "P-6"]


def test_a_connection_ended_under_a_pipeline_fails_as_the_server_said(pg_engine: sa.Engine) -> None:
    """Not as 'cannot exit pipeline mode': the server's reason comes out, as a disconnect."""
    with Session(pg_engine) as session, session.begin():
        STORE.first(session, {"code": "x"})
        pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        admin = sa.create_engine(pg_engine.url, poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        admin.dispose()
        with pytest.raises(sa.exc.OperationalError) as failed:
            INSERT_PLAIN.execute_many(session, [order(1), order(2)])
        assert "pipeline" not in str(failed.value.orig)
        assert failed.value.connection_invalidated
        session.rollback()  # nothing to send: the connection was dropped
    with Session(pg_engine) as session, session.begin():  # the pool connects again
        INSERT_PLAIN.execute_many(session, [order(1), order(2)])
        assert session.scalar(COUNT) == 2


SLEEP = Prepared(sa.select(sa.func.pg_sleep(sa.bindparam("s", type_=sa.Float))))


def test_a_connection_ended_while_a_pipeline_waits_is_dropped_and_nothing_lands(
    pg_engine: sa.Engine,
) -> None:
    """The backend ends while the pipeline's statements run: the wait for their results fails,
    the connection is left out of pipeline mode as far as it can be and dropped, the queued
    write is lost with its transaction, and the pool connects again."""
    with Session(pg_engine) as session, session.begin():
        STORE.first(session, {"code": "x"})
        pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar()

        def end_it() -> None:
            time.sleep(0.5)  # the pipeline is waiting for pg_sleep by then
            admin = sa.create_engine(pg_engine.url, poolclass=sa.pool.NullPool)
            with admin.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            admin.dispose()

        ender = threading.Thread(target=end_it)
        ender.start()
        INSERT_PLAIN.execute_later(session, order(1))
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as failed:
            SLEEP.rows(session, {"s": 30.0})  # sent with the queued write, in one pipeline
        ender.join()
        assert time.monotonic() - started < 10  # not the whole sleep
        assert failed.value.connection_invalidated
        session.rollback()
    with Session(pg_engine) as session, session.begin():
        assert session.scalar(COUNT) == 0
        INSERT_PLAIN.execute_many(session, [order(1), order(2)])
        assert session.scalar(COUNT) == 2
