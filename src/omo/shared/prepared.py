"""Statements on a sale's path, compiled once per dialect and run on the driver's cursor.

A checkout commit runs about sixteen small statements. Through SQLAlchemy's Connection each
cost some 45 µs of Python besides the database's own work — building an execution context,
processing the parameters and wrapping the cursor — more than SQLite takes to run it. A
`Prepared` statement is still written as a Core construct and compiled by SQLAlchemy, with
SQLAlchemy's own type processing (Money in cents, UTC datetimes, JSON), but the compiled SQL,
the order of its parameters and their processors are worked out once per dialect, and each run
is a call on the DBAPI cursor of the session's connection (in its transaction) — on
PostgreSQL, once the transaction is open, straight on libpq (`shared/libpq.py`).

What it does not do, by design: expanding IN parameters (write `in_([literal(v) ...])` or one
statement per length), ORM entities (rows come back as tuples), and SQLAlchemy's statement
events (`before_cursor_execute` does not see these statements). Driver errors are wrapped as
SQLAlchemy's exceptions, so `UnitOfWork.run`'s retry on a lost race still sees an
`IntegrityError`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from omo.shared import libpq

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    compiled: sa.sql.compiler.Compiled
    names: tuple[str, ...] | None  # positional paramstyles: the order of the parameters
    binds: tuple[tuple[str, Processor], ...]  # each parameter and its type's processor
    results: tuple[Processor, ...]  # each result column's processor
    # construct_params, the processors and the driver's order in one pass: for each parameter
    # the driver gets (in order), its key and name in what a caller passes, its type's
    # processor, and — for a literal — its value processed once; None where SQLAlchemy's own
    # path is needed (escaped or callable binds, values given by the statement's .params())
    plan: tuple[tuple[str, str, Processor, Any], ...] | None


_REQUIRED = object()  # a plan's parameter that a caller must give


class Prepared:
    def __init__(self, statement: sa.ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[Any, ...], _Compiled] = {}
        columns: Iterable[Any] = (
            getattr(statement, "selected_columns", None)
            or getattr(statement, "exported_columns", None)
            or ()
        )
        self._result_types = tuple(c.type for c in columns)

    def _compile(self, dialect: Dialect, keys: tuple[str, ...] | None) -> _Compiled:
        cache_key = (dialect.name, dialect.driver, dialect.paramstyle, keys)
        held = self._compiled.get(cache_key)
        if held is not None:
            return held
        kw: dict[str, Any] = {"dialect": dialect}
        if keys is not None:
            kw["column_keys"] = list(keys)
        compiled = self.statement.compile(**kw)
        binds = tuple(
            (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name, bind in compiled.binds.items()  # type: ignore[attr-defined]
        )
        results = tuple(t.dialect_impl(dialect).result_processor(dialect, None)
                        for t in self._result_types)  # fmt: skip
        positional = getattr(compiled, "positiontup", None)
        names = tuple(positional) if positional else None
        held = _Compiled(
            compiled.string, compiled, names, binds, results, _plan(compiled, dict(binds), names)
        )
        self._compiled[cache_key] = held
        return held

    def _parameters(self, c: _Compiled, params: Mapping[str, Any]) -> Any:
        if c.plan is not None:
            ordered = []
            for key, name, process, fixed in c.plan:
                if key in params:
                    value = params[key]
                elif name in params:
                    value = params[name]
                elif fixed is _REQUIRED:
                    break  # SQLAlchemy's path below says which
                else:
                    ordered.append(fixed)
                    continue
                ordered.append(value if process is None else process(value))
            else:
                if c.names is not None:
                    return tuple(ordered)
                return {slot[1]: v for slot, v in zip(c.plan, ordered, strict=True)}
        # fixed values of literals filled in; a parameter not given is an error here
        values: dict[str, Any] = dict(c.compiled.construct_params(params) or {})
        for name, process in c.binds:
            if process is not None and name in values:
                values[name] = process(values[name])
        if c.names is not None:
            return tuple(values[n] for n in c.names)
        return values

    def _run(
        self,
        session: Session,
        params: Sequence[Mapping[str, Any]],
        *,
        many: bool = False,
        later: bool = False,
    ) -> tuple[list[Any], int, _Compiled]:
        """The driver's rows (none for a statement without results), the rows touched (0 for
        writes queued `later`)."""
        session.flush()  # what the ORM holds unsent goes first, as an autoflush would send it
        conn = session.connection()
        dialect = conn.dialect
        keys = tuple(sorted(params[0])) if isinstance(self.statement, sa.Insert) else None
        c = self._compile(dialect, keys)
        driver = conn.connection.driver_connection
        psycopg = dialect.driver == "psycopg"
        try:
            values: Any = [self._parameters(c, p) for p in params]
            queueing = later and psycopg and dialect in _QUEUEING
            if queueing and libpq.run_later(driver, c.sql, values):
                return [], 0, c
            if psycopg and many:
                touched = libpq.run_many(driver, c.sql, values)
                if touched is not None:
                    return [], touched, c
            if psycopg and not many:
                done = libpq.run(driver, c.sql, values[0])
                if done is not None:
                    return done[0], done[1], c
            if psycopg:
                libpq.sent_elsewhere(driver, c.sql)  # what was queued goes before this
            cursor = driver.cursor()  # type: ignore[union-attr]
            try:
                if many:
                    cursor.executemany(c.sql, values)
                else:
                    cursor.execute(c.sql, values[0])
                found = cursor.fetchall() if cursor.description is not None else []
                return found, int(cursor.rowcount), c
            finally:
                cursor.close()
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, driver, None)
            if lost:  # as SQLAlchemy does: the pool drops it, and those older than it
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                c.sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect,
                connection_invalidated=lost,
            ) from exc  # fmt: skip

    def rows(
        self, session: Session, params: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Every row of a SELECT (or an INSERT … RETURNING), its values processed by type."""
        found, _count, c = self._run(session, [params or {}])
        return [
            tuple(p(v) if p is not None else v for p, v in zip(c.results, row, strict=True))
            for row in found
        ]

    def first(
        self, session: Session, params: Mapping[str, Any] | None = None
    ) -> tuple[Any, ...] | None:
        found = self.rows(session, params)
        return found[0] if found else None

    def scalar(self, session: Session, params: Mapping[str, Any] | None = None) -> Any:
        row = self.first(session, params)
        return row[0] if row is not None else None

    def execute(self, session: Session, params: Mapping[str, Any] | None = None) -> int:
        """Run an INSERT, UPDATE or DELETE without results; returns the rows it touched."""
        return self._run(session, [params or {}])[1]

    def execute_many(self, session: Session, params: Sequence[Mapping[str, Any]]) -> None:
        """Run an INSERT or UPDATE once per set of parameters (all with the same keys)."""
        if params:
            self._run(session, params, many=True)

    def ahead(
        self, session: Session, params: Mapping[str, Any] | None = None, *, lasting: bool = False
    ) -> None:
        """Read ahead: on PostgreSQL in a transaction (or opening it), send this SELECT with the
        transaction's next statement, in one round trip, and keep its rows for the `rows` (or
        `first`, `scalar`) call with the same parameters — as long as nothing is written in
        between, which drops every read ahead (that call then reads again) but a `lasting` one:
        a read whose answer nothing the transaction writes can change (a sequence's next
        number). Elsewhere, and unasked for, it costs nothing: a use case names the reads it is
        about to make."""
        if not isinstance(self.statement, sa.Select):
            raise TypeError("only a SELECT is read ahead: a write would be sent before its turn")
        if not queues(session):  # before anything else: on SQLite a sale asks eight times
            return
        session.flush()
        conn = session.connection()
        dialect = conn.dialect
        c = self._compile(dialect, None)
        try:
            libpq.run_ahead(
                conn.connection.driver_connection, c.sql, self._parameters(c, params or {}),
                lasting=lasting,
            )  # fmt: skip
        except dialect.loaded_dbapi.Error as exc:  # preparing it failed
            raise sa.exc.DBAPIError.instance(
                c.sql, [params], exc, dialect.loaded_dbapi.Error, dialect=dialect
            ) from exc

    def execute_later(self, session: Session, *params: Mapping[str, Any]) -> None:
        """Run an INSERT, UPDATE or DELETE whose answer nobody reads, once per set of
        parameters: on PostgreSQL inside a transaction it is queued, and sent with the
        transaction's next statement or before its COMMIT, in one round trip with them (a
        sale's lines, stats and outbox fact go with its points); its errors are raised there,
        as SQLAlchemy's. Elsewhere, and on an engine without `install_queue`, it runs at once."""
        if params:
            self._run(session, params, many=len(params) > 1, later=True)


def _plan(
    compiled: Any, processors: dict[str, Processor], positional: tuple[str, ...] | None
) -> tuple[tuple[str, str, Processor, Any], ...] | None:
    """What `construct_params` does for this statement, worked out once (see `_Compiled.plan`):
    for each bind the key or the name a caller gives it by, else its literal value."""
    collected = getattr(compiled, "_collected_params", None)  # a statement's .params(...)
    if compiled.escaped_bind_names or collected or compiled._render_postcompile:
        return None
    slots: dict[str, tuple[str, str, Processor, Any]] = {}
    for bind, name in compiled.bind_names.items():
        if bind.callable:
            return None
        process = processors.get(name)
        if bind.required:
            fixed = _REQUIRED
        else:
            fixed = bind.value if process is None else process(bind.value)
        slot = (bind.key, name, process, fixed)
        if slots.setdefault(name, slot) != slot:  # one name used twice, as two different binds
            return None
    order = positional if positional is not None else tuple(slots)
    if any(n not in slots for n in order):
        return None
    return tuple(slots[n] for n in order)


# the dialects of engines whose connections send what execute_later queued (the dialect: an
# engine's copies with other options share it and its events, and it outlives dispose())
_QUEUEING: weakref.WeakSet[Dialect] = weakref.WeakSet()


def queues(session: Session) -> bool:
    """Whether execute_later queues on this session's engine (PostgreSQL with install_queue)."""
    dialect = session.get_bind().dialect
    return dialect.driver == "psycopg" and dialect in _QUEUEING


def install_queue(engine: sa.Engine) -> None:
    """What execute_later and ahead queue is sent before any other statement on the connection
    (the ORM's, a cursor's), and the queued writes go with COMMIT, in its round trip; it is
    forgotten at ROLLBACK or BEGIN; a write sent another way drops what was read ahead.
    (PostgreSQL)"""
    _QUEUEING.add(engine.dialect)
    dialect = engine.dialect

    def drain(conn: sa.Connection, statement: str) -> None:
        driver = conn.connection.driver_connection
        try:
            if statement == "COMMIT":  # with the queue, in its round trip
                libpq.commit(driver)
            else:
                libpq.sent_elsewhere(driver, statement)
        except dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(
                f"(queued before) {statement}", None, exc, dialect.loaded_dbapi.Error,
                dialect=dialect,
            ) from exc  # fmt: skip

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _before_statement(conn: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
        drain(conn, statement)

    @sa.event.listens_for(engine, "commit")
    def _before_commit(conn: sa.Connection) -> None:
        drain(conn, "COMMIT")

    @sa.event.listens_for(engine, "rollback")
    @sa.event.listens_for(engine, "begin")
    def _forget(conn: sa.Connection) -> None:
        if not conn.invalidated:  # an invalidated one's driver connection is gone, queue and all
            libpq.discard(conn.connection.driver_connection)
