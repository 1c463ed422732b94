"""Engine, sessions and the declarative base shared by every area's tables.

One use case = one transaction: interfaces call `UnitOfWork.write()` or `.read()` once and pass
the session down. SQLite takes the write lock at BEGIN (BEGIN IMMEDIATE) so that two writers never
deadlock on a lock upgrade; reads use a deferred BEGIN and, with WAL, never block writers.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import QueuePool

from omo import walcheckpoints
from omo.settings import Settings
from omo.shared import libpq, prepared

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


T = TypeVar("T")

_READONLY = "omo_readonly"
_BUSY_ZERO = "omo_busy_zero"
_NO_WAIT: ContextVar[bool] = ContextVar("omo_no_wait", default=False)


class WouldWait(Exception):
    """A unit of work run where nothing may wait (the event loop) would have had to wait."""


class NoWriteTurn(TimeoutError):
    """This process's other writers of SQLite held the database past the wait allowed."""


@contextmanager
def without_waiting() -> Iterator[None]:
    """Units of work begun in this block raise WouldWait, having changed nothing, where they
    would wait: for this process's other writer, for SQLite's lock held by another process, for
    a retry's pause, for a PostgreSQL lock held longer than LOOP_LOCK_WAIT_MS, or for PostgreSQL
    at all unless its round trips are short (UnitOfWork's `pg_on_loop`, `runs_on_loop`). The
    caller runs the use case again where waiting is fine."""
    token = _NO_WAIT.set(True)
    try:
        yield
    finally:
        _NO_WAIT.reset(token)


# A PostgreSQL unit of work on the event loop waits this long at most for a lock (a sale of the
# same member at another till commits in a few ms) and then goes to the thread pool: a longer
# wait would hold every request of the worker, its health checks among them.
LOOP_LOCK_WAIT_MS = 20
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def runs_on_loop(settings: Settings) -> bool:
    """Whether PostgreSQL units of work may run on the event loop (`UnitOfWork(pg_on_loop=)`):
    as `settings.pg_on_loop` says; `auto`, when the server is on this machine — a Unix socket
    or a loopback address — where a round trip costs microseconds. There a worker spent some
    15 % less CPU on a sale than by handing it to its thread pool and back (docs/performance.md).
    Over a network each of a sale's round trips would hold the loop."""
    if settings.pg_on_loop != "auto":
        return settings.pg_on_loop == "yes"
    url = make_url(settings.database_url)
    if url.get_backend_name() != "postgresql":
        return False
    # where libpq connects: the URL's host, else its `host` parameter, else PGHOST; and an
    # address given beside it (`hostaddr`, PGHOSTADDR) is used without looking the name up
    host = url.host or str(url.query.get("host") or os.environ.get("PGHOST", ""))
    address = str(url.query.get("hostaddr") or os.environ.get("PGHOSTADDR", ""))
    places = [*host.split(","), *address.split(",")]
    return all(not p or p.startswith("/") or p in _LOCAL_HOSTS for p in places)


def make_engine(settings: Settings) -> Engine:
    """An engine for the configured database, with SQLite set up for a single-file server.

    The pool hands out the connection used last (LIFO), not the one idle longest: under a
    steady load the same one or two connections do the work while the rest wait. A SQLite
    connection keeps its page cache only as long as no other connection has written; a
    PostgreSQL one keeps its prepared statements (shared/libpq.py) and its backend's caches.
    Measured on `omo serve` with the checkout bench, 2 clients: SQLite about 5 % more commits/s
    (0.95-1.12 against 1.02-1.16 ms of CPU in a sale); PostgreSQL with 2 workers 439-460
    against 306-375 commits/s (no change at 4 clients)."""
    url = settings.database_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            with suppress(OSError):  # else SQLite says it cannot open the file
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=settings.echo_sql,
            connect_args={"timeout": settings.sqlite_busy_timeout_s, "check_same_thread": False},
            **({"pool_use_lifo": True} if path and path != ":memory:" else {}),  # a file's pool
        )
        _configure_sqlite(engine, settings, path if path != ":memory:" else "")
        return engine
    engine = create_engine(url, echo=settings.echo_sql, pool_size=10, pool_use_lifo=True)
    _ping_when_idle(engine, settings.pg_ping_idle_s)
    prepared.install_queue(engine)  # Prepared.execute_later's writes
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection before use when it has been idle `idle_s` or more.

    SQLAlchemy's pool_pre_ping pings at every checkout: a round trip and some 80 µs of CPU per
    transaction, a twentieth of a sale. A connection used in the last seconds is almost surely
    alive; one that is not (the server restarted under load) fails its transaction, and the
    disconnect makes SQLAlchemy renew every connection of the pool older than it. A quiet
    pool's connections are pinged, so a restart at night costs no request."""
    busy_until = "omo_checked_in_at"

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[busy_until] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(busy_until)
        if last is None or time.monotonic() - last < idle_s:
            return  # just connected, or busy a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_conn, None):
                raise DisconnectionError(str(exc)) from exc  # the pool connects again
            raise


def _configure_sqlite(engine: Engine, settings: Settings, path: str) -> None:
    busy_ms = int(settings.sqlite_busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        if path:  # the log is copied back by walcheckpoints' thread; this is the backstop
            cur.execute(f"PRAGMA wal_autocheckpoint={walcheckpoints.BACKSTOP_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # on the driver's connection (exec_driver_sql took 15 µs more, of an empty unit of
        # work's 77), its errors wrapped as SQLAlchemy's as exec_driver_sql would
        readonly = conn.get_execution_options().get(_READONLY, False)
        driver = conn.connection.driver_connection
        statement = "BEGIN" if readonly else "BEGIN IMMEDIATE"
        try:
            if not readonly and _NO_WAIT.get():  # another process's lock: fail at once
                conn.info[_BUSY_ZERO] = True
                driver.execute("PRAGMA busy_timeout=0")
            driver.execute(statement)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn: Any, record: Any) -> None:
        if record.info.pop(_BUSY_ZERO, False):
            dbapi_conn.execute(f"PRAGMA busy_timeout={busy_ms}")

    if path:

        @event.listens_for(engine, "commit")
        def _on_commit(_conn: Any) -> None:
            walcheckpoints.nudge(path)

        @event.listens_for(engine, "close")
        def _on_close(_dbapi_conn: Any, _record: Any) -> None:
            # the pool's last connection (engine.dispose()): end the thread, so that the last
            # close folds the log into the file. A connection closed beside others (the pool's
            # overflow under load) leaves it running: stopping joins it on a request's path.
            pool = engine.pool
            if not isinstance(pool, QueuePool) or pool.checkedin() == 0:
                walcheckpoints.stop(path)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


_WRITERS: dict[str, threading.RLock] = {}
_WRITERS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> threading.RLock | None:
    """SQLite has one writer: the threads of this process queue for it on a lock of their own,
    woken the moment the writer before them commits, instead of polling SQLite's lock with the
    busy handler's growing sleeps (which gave eight tills a p99 of 2 s). Other processes (a CLI
    job beside the server) still meet SQLite's own lock and its busy timeout."""
    if engine.dialect.name != "sqlite":
        return None
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(str(engine.url), threading.RLock())


class UnitOfWork:
    """Opens the one transaction of a use case; retries it whole on a lost race."""

    def __init__(
        self, engine: Engine, *, writer_wait_s: float = 30.0, pg_on_loop: bool = False
    ) -> None:
        """`pg_on_loop`: on PostgreSQL, units of work begun `without_waiting` run (their lock
        waits capped), not raise WouldWait at once; see `runs_on_loop`."""
        self.engine = engine
        self._pg_on_loop = pg_on_loop and engine.dialect.name == "postgresql"
        self._writer = _writer_lock(engine)
        self._writer_wait_s = writer_wait_s
        self._write = sessionmaker(bind=engine, expire_on_commit=False)
        # On PostgreSQL a read is a READ ONLY transaction, so ending it with COMMIT is as safe
        # as a ROLLBACK; and it must end so: after every ROLLBACK psycopg drops the connection's
        # prepared statements (DEALLOCATE ALL), its own and the sale's (shared/libpq.py).
        self._commit_reads = engine.dialect.name == "postgresql"
        readonly: dict[str, Any] = {_READONLY: True}
        if self._commit_reads:
            readonly["postgresql_readonly"] = True
        self._read = sessionmaker(bind=engine.execution_options(**readonly), expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        no_wait = _NO_WAIT.get()
        if self._writer is None:
            with self._postgres(self._write, no_wait) as session:
                yield session
            return
        if no_wait:
            if not self._writer.acquire(blocking=False):
                raise WouldWait("another writer of this process holds the database")
        elif not self._writer.acquire(timeout=self._writer_wait_s):
            raise NoWriteTurn(f"no write turn on the database in {self._writer_wait_s:.0f} s")
        try:
            with self._write() as session, session.begin():
                yield session
        except OperationalError as exc:
            if no_wait and is_retryable(exc):  # another process holds SQLite's lock
                raise WouldWait(str(exc.orig)) from exc
            raise
        finally:
            self._writer.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        if self._writer is None:
            with self._postgres(self._read, _NO_WAIT.get()) as session:
                yield session
            return
        with self._read() as session, session.begin():
            yield session
            if not self._commit_reads:
                session.rollback()

    @contextmanager
    def _postgres(self, sessions: sessionmaker[Session], no_wait: bool) -> Iterator[Session]:
        """A PostgreSQL transaction; `no_wait`: on the event loop, where it may wait for round
        trips (when `pg_on_loop`) but not for a lock held longer than LOOP_LOCK_WAIT_MS."""
        if no_wait and not self._pg_on_loop:
            raise WouldWait("PostgreSQL: every statement waits on the network")
        try:
            with sessions() as session, session.begin():
                if no_wait:
                    _cap_lock_wait(session)
                yield session
        except OperationalError as exc:
            if no_wait and getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
                raise WouldWait(f"a lock held longer than {LOOP_LOCK_WAIT_MS} ms") from exc
            raise

    def run(self, use_case: Callable[[Session], T], *, attempts: int = 5) -> T:
        """Run `use_case` in one write transaction; retry when a concurrent writer won a race.

        A unique-key violation from a concurrent insert of the same order, member identifier or
        event, or a PostgreSQL serialization/deadlock failure, rolls everything back; the retry
        then sees the winner's rows (idempotency checks return the first result).
        """
        for attempt in range(attempts):
            try:
                with self.write() as session:
                    return use_case(session)
            except (IntegrityError, OperationalError) as exc:
                if attempt == attempts - 1 or not is_retryable(exc):
                    raise
                if _NO_WAIT.get():
                    raise WouldWait("a lost race: the retry pauses") from exc
                time.sleep(0.005 * (2**attempt))
        raise AssertionError("unreachable")


_CAP_LOCK_WAIT = "SELECT set_config('lock_timeout', %(wait)s, true)"


def _cap_lock_wait(session: Session) -> None:
    """This PostgreSQL transaction waits at most LOOP_LOCK_WAIT_MS for any lock, then fails
    with lock_not_available (SET LOCAL: the connection's setting is back at its end). Queued
    to go with the transaction's first statement, in its round trip (shared/libpq.py), or
    sent now where statements are not prepared (PgBouncer)."""
    wait = {"wait": f"{LOOP_LOCK_WAIT_MS}ms"}
    driver = session.connection().connection.driver_connection
    if not libpq.run_ahead(driver, _CAP_LOCK_WAIT, wait):
        session.execute(text(_CAP_LOCK_WAIT.replace("%(wait)s", ":wait")), wait)


def is_retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        # Only a duplicate key means "someone else inserted it first"; a foreign-key or check
        # violation is bad input and retrying cannot help.
        return getattr(exc.orig, "sqlstate", None) == "23505" or "UNIQUE constraint" in str(
            exc.orig
        )
    code = getattr(exc.orig, "sqlstate", None)
    if code in {"40001", "40P01"}:  # serialization failure, deadlock detected
        return True
    return "database is locked" in str(exc.orig)
