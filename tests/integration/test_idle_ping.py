"""Pooled PostgreSQL connections are pinged before use only after they have been idle: a pool
busy a moment ago is used as it is, and a quiet pool survives its server's connections ending."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from omo.db import UnitOfWork, make_engine
from omo.settings import Settings

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("db_url", ["postgres"], indirect=True),  # PostgreSQL's alone
]


@pytest.fixture
def pooled(db_url: str, request: pytest.FixtureRequest) -> Iterator[tuple[UnitOfWork, list[Any]]]:
    """A unit of work whose engine pings after `request.param` idle seconds, and its pings."""
    engine = make_engine(Settings(database_url=db_url, pg_ping_idle_s=request.param))
    pings: list[Any] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_conn: Any) -> bool:
        pings.append(dbapi_conn)
        return ping(dbapi_conn)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    yield UnitOfWork(engine), pings
    engine.dispose()


def one(uow: UnitOfWork) -> int:
    with uow.read() as s:
        return int(s.scalar(sa.text("SELECT 1")) or 0)


def end_the_servers_side(uow: UnitOfWork) -> None:
    """What a server restart does to the pool: every other connection to the database ends."""
    admin = sa.create_engine(uow.engine.url, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        ended = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).scalar()  # fmt: skip
    admin.dispose()
    assert ended, "the pool held no connection"
    time.sleep(0.2)  # the backends are gone before the pool is asked


@pytest.mark.parametrize("pooled", [3600.0], indirect=True)
def test_a_connection_busy_a_moment_ago_is_not_pinged(pooled: tuple[UnitOfWork, list[Any]]) -> None:
    uow, pings = pooled
    for _ in range(5):
        assert one(uow) == 1
        uow.run(lambda s: s.execute(sa.text("SELECT 1")))
    assert pings == []


@pytest.mark.parametrize("pooled", [0.05], indirect=True)
def test_an_idle_connection_is_pinged_and_renewed_when_its_server_side_ended(
    pooled: tuple[UnitOfWork, list[Any]],
) -> None:
    uow, pings = pooled
    assert one(uow) == 1
    assert pings == []  # a new connection is not pinged
    end_the_servers_side(uow)
    assert one(uow) == 1  # pinged, found dead, replaced: the caller sees nothing
    assert len(pings) == 1


@pytest.mark.parametrize("pooled", [3600.0], indirect=True)
def test_unpinged_a_dead_connection_fails_one_transaction_and_the_pool_renews(
    pooled: tuple[UnitOfWork, list[Any]],
) -> None:
    """What the ping saves a quiet pool from, and why a busy pool can do without it."""
    uow, pings = pooled
    assert one(uow) == 1
    end_the_servers_side(uow)
    with pytest.raises(sa.exc.OperationalError) as failed:
        one(uow)
    assert failed.value.connection_invalidated
    assert one(uow) == 1
    assert pings == []
