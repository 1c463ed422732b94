"""Units of work that must not wait (db.without_waiting): on SQLite they run when the writer's
turn is free and raise WouldWait at once, having changed nothing, when it is not; on
PostgreSQL they raise it unless the unit of work may run on the loop (`pg_on_loop`, for a
server on this machine), and then when a lock is held longer than LOOP_LOCK_WAIT_MS. An
endpoint marked inline_first runs on the event loop when its unit of work can, and in the
thread pool otherwise."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from omo.commerce.models import Store
from omo.db import (
    LOOP_LOCK_WAIT_MS,
    UnitOfWork,
    WouldWait,
    _writer_lock,
    runs_on_loop,
    without_waiting,
)
from omo.http import PooledRoute, inline_first
from omo.settings import Settings


def add_store(uow: UnitOfWork, code: str) -> None:
    with uow.write() as session:
        session.add(Store(code=code, name=code, region="台北市", is_active=True))


@contextmanager
def another_thread_writing(uow: UnitOfWork, *, at_most_s: float) -> Iterator[None]:
    """Another thread of this process holds SQLite's writer turn from entry until exit, or
    for `at_most_s`, whichever is first."""
    lock = _writer_lock(uow.engine)
    assert lock is not None
    taken, done = threading.Event(), threading.Event()

    def writer() -> None:
        with lock:
            taken.set()
            done.wait(at_most_s)

    other = threading.Thread(target=writer)
    other.start()
    taken.wait(5)
    try:
        yield
    finally:
        done.set()
        other.join()


def stores(uow: UnitOfWork) -> int:
    with uow.read() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Store)) or 0


SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_postgresql_never_runs_without_waiting(uow: UnitOfWork) -> None:
    with without_waiting(), pytest.raises(WouldWait):
        add_store(uow, "S-1")
    with without_waiting(), pytest.raises(WouldWait):
        stores(uow)
    assert stores(uow) == 0


def lock_timeout(session: Session) -> str:
    return str(session.execute(sa.text("SHOW lock_timeout")).scalar())


@pytest.mark.parametrize(
    ("url", "setting", "on_loop"),
    [
        ("postgresql+psycopg://omo@127.0.0.1:5432/omo", "auto", True),
        ("postgresql+psycopg://omo@localhost/omo", "auto", True),
        ("postgresql+psycopg://omo@[::1]:5432/omo", "auto", True),
        ("postgresql+psycopg:///omo", "auto", True),  # libpq's default Unix socket
        ("postgresql+psycopg:///omo?host=/var/run/postgresql", "auto", True),
        ("postgresql+psycopg://omo@db.internal:5432/omo", "auto", False),
        ("postgresql+psycopg://omo@10.0.0.5/omo", "auto", False),
        ("postgresql+psycopg:///omo?host=/tmp,db.internal", "auto", False),  # may fail over
        ("postgresql+psycopg://omo@db.internal/omo", "yes", True),
        ("postgresql+psycopg://omo@127.0.0.1/omo", "no", False),
        ("sqlite:///var/omo.sqlite", "auto", False),  # SQLite runs on the loop its own way
    ],
)
def test_postgresql_runs_on_the_loop_when_its_round_trips_are_short(
    url: str, setting: str, on_loop: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGHOST", raising=False)
    monkeypatch.delenv("PGHOSTADDR", raising=False)
    assert runs_on_loop(Settings(database_url=url, pg_on_loop=setting)) is on_loop


@pytest.mark.parametrize(
    ("url", "env", "on_loop"),
    [
        ("postgresql+psycopg:///omo", {"PGHOST": "db.internal"}, False),
        ("postgresql+psycopg:///omo", {"PGHOST": "/var/run/postgresql"}, True),
        ("postgresql+psycopg://omo@127.0.0.1/omo", {"PGHOST": "db.internal"}, True),  # URL wins
        ("postgresql+psycopg:///omo", {"PGHOSTADDR": "10.0.0.5"}, False),
        ("postgresql+psycopg://omo@localhost/omo?hostaddr=10.0.0.5", {}, False),
        ("postgresql+psycopg://omo@localhost/omo?hostaddr=127.0.0.1", {}, True),
    ],
)
def test_where_libpq_connects_decides_not_the_url_alone(
    url: str, env: dict[str, str], on_loop: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PGHOST", "PGHOSTADDR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert runs_on_loop(Settings(database_url=url)) is on_loop


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.postgres
@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "pgbouncer"])
def test_postgresql_on_the_loop_runs_with_its_lock_waits_capped_for_that_transaction_only(
    uow: UnitOfWork, db_url: str, prepared: bool
) -> None:
    # without server-side prepared statements (PgBouncer) the cap is a statement of its own
    engine = (
        uow.engine
        if prepared
        else sa.create_engine(db_url, connect_args={"prepare_threshold": None}, pool_use_lifo=True)
    )
    on_loop = UnitOfWork(engine, pg_on_loop=True)
    with without_waiting():
        add_store(on_loop, "S-1")
        assert stores(on_loop) == 1
        with on_loop.write() as session:
            assert lock_timeout(session) == f"{LOOP_LOCK_WAIT_MS}ms"
        with on_loop.read() as session:
            assert lock_timeout(session) == f"{LOOP_LOCK_WAIT_MS}ms"
    with on_loop.write() as session:  # the pool's same connection (LIFO), off the loop
        assert lock_timeout(session) == "0"
    assert stores(uow) == 1
    engine.dispose()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_postgresql_on_the_loop_gives_up_a_held_lock_at_once_having_changed_nothing(
    uow: UnitOfWork,
) -> None:
    add_store(uow, "S-1")
    on_loop = UnitOfWork(uow.engine, pg_on_loop=True)

    def rename(session: Session) -> None:
        session.add(Store(code="S-2", name="S-2", region="台北市", is_active=True))
        session.flush()
        session.execute(sa.update(Store).where(Store.code == "S-1").values(name="renamed"))

    with uow.engine.connect() as other:  # another till holds the row for 2 s
        other.execute(sa.update(Store).where(Store.code == "S-1").values(name="held"))
        release = threading.Timer(2.0, other.rollback)  # without the cap: a wait, not a hang
        release.start()
        started = time.perf_counter()
        try:
            with without_waiting(), pytest.raises(WouldWait, match="lock held longer"):
                on_loop.run(rename)
            assert time.perf_counter() - started < 1.0
        finally:
            release.join()
    assert stores(uow) == 1  # S-2 went with the transaction
    on_loop.run(rename)  # off the loop, once the lock is free
    with uow.read() as session:
        assert session.scalar(sa.select(Store.name).where(Store.code == "S-1")) == "renamed"
        assert lock_timeout(session) == "0"


@SQLITE
def test_sqlite_runs_when_the_writer_is_free_and_not_while_another_thread_writes(
    uow: UnitOfWork,
) -> None:
    with without_waiting():
        add_store(uow, "S-1")
        assert stores(uow) == 1  # a read never waits on SQLite (WAL)
    with another_thread_writing(uow, at_most_s=5):
        started = time.perf_counter()
        with without_waiting(), pytest.raises(WouldWait):
            add_store(uow, "S-2")
        assert time.perf_counter() - started < 0.1
    assert stores(uow) == 1


@SQLITE
def test_sqlite_does_not_wait_for_another_process_and_the_connection_waits_again_after(
    uow: UnitOfWork, db_url: str
) -> None:
    path = db_url.split("///", 1)[1]
    stores(uow)
    outside = sqlite3.connect(path, isolation_level=None)  # another process, as SQLite sees it
    outside.execute("BEGIN IMMEDIATE")
    try:
        started = time.perf_counter()
        with without_waiting(), pytest.raises(WouldWait):
            add_store(uow, "S-1")
        assert time.perf_counter() - started < 0.5  # not the busy timeout
    finally:
        outside.execute("ROLLBACK")
        outside.close()
    assert stores(uow) == 0
    with uow.engine.connect() as conn:  # the pool's one connection: its timeout is back
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0


@SQLITE
def test_a_lost_race_does_not_pause_on_the_loop(uow: UnitOfWork) -> None:
    add_store(uow, "S-1")
    tries: list[int] = []

    def lost(session: Session) -> None:
        tries.append(1)
        session.add(Store(code="S-2", name="x", region="台北市", is_active=True))
        session.add(Store(code="S-1", name="x", region="台北市", is_active=True))  # duplicate
        session.flush()

    with without_waiting(), pytest.raises(WouldWait):
        uow.run(lost)
    assert tries == [1] and stores(uow) == 1


def app_for(uow: UnitOfWork) -> FastAPI:
    router = APIRouter(route_class=PooledRoute)

    @router.post("/stores/{code}")
    @inline_first
    def create(code: str) -> dict[str, Any]:
        add_store(uow, code)
        return {"thread": threading.current_thread().name}

    app = FastAPI()
    app.include_router(router)
    return app


def test_an_inline_first_endpoint_runs_on_the_loop_when_it_can(uow: UnitOfWork) -> None:
    with TestClient(app_for(uow)) as client:
        assert client.portal is not None
        loop = client.portal.call(lambda: threading.current_thread().name)
        ran_in = client.post("/stores/S-1").json()["thread"]
        lock = _writer_lock(uow.engine)
        if lock is not None:  # SQLite: on the loop, unless another thread writes
            assert ran_in == loop
            with another_thread_writing(uow, at_most_s=0.3):
                held = client.post("/stores/S-2")  # waits for it, in the pool
            assert held.json()["thread"] != loop
        else:  # PostgreSQL: in the pool, unless its round trips are short (below)
            assert ran_in != loop
    assert stores(uow) == (2 if lock is not None else 1)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_an_inline_first_endpoint_on_postgresql_runs_on_the_loop_when_allowed(
    uow: UnitOfWork,
) -> None:
    on_loop = UnitOfWork(uow.engine, pg_on_loop=True)
    with TestClient(app_for(on_loop)) as client:
        assert client.portal is not None
        loop = client.portal.call(lambda: threading.current_thread().name)
        assert client.post("/stores/S-1").json()["thread"] == loop
        with uow.engine.connect() as other:  # a lock held: the pool waits for it
            other.execute(
                sa.insert(Store).values(code="S-2", name="x", region="台北市", is_active=True)
            )
            answer: list[Any] = []
            waiting = threading.Thread(target=lambda: answer.append(client.post("/stores/S-2")))
            waiting.start()
            time.sleep(0.3)
            other.rollback()
            waiting.join(10)
        assert answer[0].status_code == 200 and answer[0].json()["thread"] != loop
    assert stores(uow) == 2
