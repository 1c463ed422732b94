"""The pool hands out the connection used last: under a steady load the same connection does
the work, with its SQLite page cache or its PostgreSQL prepared statements still warm."""

from __future__ import annotations

import sqlalchemy as sa

from omo.db import UnitOfWork


def test_the_connection_used_last_is_handed_out_first(engine: sa.Engine) -> None:
    first, second = engine.connect(), engine.connect()  # two connections in the pool
    drivers = [first.connection.driver_connection, second.connection.driver_connection]
    assert drivers[0] is not drivers[1]
    first.close()
    second.close()  # the one used last
    for _ in range(3):
        with engine.connect() as conn:
            assert conn.connection.driver_connection is drivers[1]


def test_a_unit_of_work_after_another_gets_its_connection(engine: sa.Engine) -> None:
    first, second = engine.connect(), engine.connect()  # two in the pool: FIFO would alternate
    first.close()
    second.close()
    uow = UnitOfWork(engine)
    seen = []
    for _ in range(4):
        with uow.write() as session:
            seen.append(session.connection().connection.driver_connection)
        with uow.read() as session:
            seen.append(session.connection().connection.driver_connection)
    assert len({id(d) for d in seen}) == 1
