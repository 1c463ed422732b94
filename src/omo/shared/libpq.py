"""Prepared statements run straight on libpq, for a psycopg connection in a transaction.

psycopg's cursor spends some 35 µs of Python per statement around the database's work (a
cursor object, the query's conversion, its own prepared-statement bookkeeping, a generator
waiting on the socket): for a trivial prepared SELECT, 65–75 µs of CPU through the cursor
against 32 µs here (docs/performance.md). A sale runs some sixteen statements. Here each
statement is prepared on the server once per connection under a name of ours, and each run is
psycopg's own parameter dumping and row loading (its C `Transformer`, the same adapters the
cursor uses) around one `PQexecPrepared`, which releases the GIL while it waits. A statement
run for many sets of values (`run_many`: a sale's lines) is sent in libpq's pipeline mode, all
of it before any answer is read: one round trip, as psycopg's executemany makes, without its
cursor (some 70 µs less CPU for two lines).

Writes whose answer nobody reads are queued (`run_later`) and sent in one pipeline with the
connection's next statement, or by `drain` before a statement sent elsewhere and before COMMIT
(shared/prepared.py's engine events). Reads a use case is about to make can be queued the same
way (`run_ahead`), their results kept for the `run` of the same statement with the same values
until anything is written. A round trip costs more than the statement: a sale went from 16 to 7.

Inside a transaction, or opening one: psycopg opens its transaction lazily, sending BEGIN before
the first statement; where that statement is ours, the BEGIN psycopg would send (read-only,
isolation level) goes in the same pipeline, and psycopg, seeing the transaction open, sends
none. Not in autocommit, and not with `prepare_threshold=None`, which is how psycopg is told
that server-side prepared statements are not wanted (PgBouncer in transaction mode): there
`run` answers None and the statement goes through the cursor.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import select
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import psycopg
from psycopg import errors, pq
from psycopg.adapt import PyFormat, Transformer

# a prepared statement's name, its values dumped, and whether its rows are kept: _NOT, _AHEAD
# (a read ahead, dropped by a write) or _LASTING (read ahead, its answer one that no write of
# the transaction changes: a sequence's next number)
_Sent = tuple[bytes, Sequence[Any], int]
_NOT, _AHEAD, _LASTING = 0, 1, 2
_PLACEHOLDER = re.compile(r"%%|%\(([^)]*)\)s")
_NAMES = itertools.count(1)


class _Connection:
    """What we know of a psycopg connection: our statements' names on it, its encoding. (Nothing
    here may refer to the connection, or the weak mapping below would keep it alive.)

    psycopg drops every prepared statement of the connection, ours with its own (DEALLOCATE
    ALL), after a ROLLBACK, DROP, ALTER or DISCARD ALL once it has prepared statements of its
    own; its prepare manager's `clear` says so by returning True. That call is wrapped here so
    that our names go at the same moment and the next run prepares again."""

    def __init__(self, driver: psycopg.Connection[Any]) -> None:
        self.names: dict[bytes, bytes] = {}
        self.queued: list[_Sent] = []  # run_later's writes and run_ahead's reads, not sent yet
        self.ahead: dict[tuple[bytes, tuple[bytes | None, ...]], pq.abc.PGresult] = {}
        self.lasting: dict[tuple[bytes, tuple[bytes | None, ...]], pq.abc.PGresult] = {}
        self.reads: set[bytes] = set()  # the names of our statements that only read
        self.encoding = driver.info.encoding
        # the one private part of psycopg relied on (3.0 to 3.3); without it, the cursor
        manager = getattr(driver, "_prepared", None)
        psycopgs_clear: Callable[[], bool] | None = getattr(manager, "clear", None)
        self.known = psycopgs_clear is not None
        if psycopgs_clear is None:
            return
        names = self.names

        def clear() -> bool:
            dropping = bool(psycopgs_clear())
            if dropping:
                names.clear()
            return dropping

        manager.clear = clear  # type: ignore[union-attr]


_HELD: weakref.WeakKeyDictionary[psycopg.Connection[Any], _Connection] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=4096)
def numbered(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """SQLAlchemy's pyformat SQL (`%(name)s`, `%%`) as libpq's ($1, $2 …) and the names in order."""
    order: dict[str, int] = {}

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return "%"
        return f"${order.setdefault(m.group(1), len(order) + 1)}"

    return _PLACEHOLDER.sub(sub, sql).encode(), tuple(order)


def _usable(driver: Any, *, opening: bool = False) -> _Connection | None:
    """What we hold of the connection, when a statement may run here: psycopg, server-side
    statements wanted, in a transaction — or, `opening`, where psycopg would open one first."""
    held = _HELD.get(driver)
    if held is None:
        if not isinstance(driver, psycopg.Connection):
            return None
        held = _HELD[driver] = _Connection(driver)
    if not held.known or driver.prepare_threshold is None:
        return None
    status = driver.pgconn.transaction_status
    if status == pq.TransactionStatus.INTRANS:
        return held
    if (
        opening
        and status == pq.TransactionStatus.IDLE
        and not driver.autocommit
        and driver.pgconn.pipeline_status == pq.PipelineStatus.OFF
    ):
        return held
    return None


def _begin(driver: Any) -> bytes | None:
    """The BEGIN psycopg would send before this statement (none in a transaction): as its
    own, from the connection's isolation level, read-only and deferrable settings."""
    if driver.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return None
    parts = [b"BEGIN"]
    if driver.isolation_level is not None:
        level = psycopg.IsolationLevel(driver.isolation_level).name.replace("_", " ")
        parts += [b"ISOLATION LEVEL", level.encode()]
    if driver.read_only is not None:
        parts.append(b"READ ONLY" if driver.read_only else b"READ WRITE")
    if driver.deferrable is not None:
        parts.append(b"DEFERRABLE" if driver.deferrable else b"NOT DEFERRABLE")
    return b" ".join(parts)


def _prepared(pgconn: Any, held: _Connection, sql: str) -> tuple[bytes, tuple[str, ...]]:
    """The statement's name on this connection (prepared now if it is new), its parameters."""
    text, names = numbered(sql)
    name = held.names.get(text)
    if name is None:
        name = f"omo_{next(_NAMES)}".encode()
        _check(pgconn.prepare(name, text, None), held)
        held.names[text] = name
        if _reads(sql):
            held.reads.add(name)
    return name, names


def _key(name: bytes, params: Sequence[Any]) -> tuple[bytes, tuple[bytes | None, ...]]:
    """A statement with its values, as a read ahead is found again (psycopg dumps to bytearray)."""
    return name, tuple(None if v is None else bytes(v) for v in params)


def _reads(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


def run(
    driver: Any, sql: str, values: Mapping[str, Any]
) -> tuple[list[tuple[Any, ...]], int] | None:
    """The rows (processed by psycopg's loaders) and the rows touched, psycopg's exceptions; None
    where the statement must go through the cursor (outside a transaction, not psycopg). Writes
    queued by `run_later` go first, in the same round trip."""
    held = _usable(driver, opening=True)
    if held is None:
        return None
    pgconn = driver.pgconn
    name, names = _prepared(pgconn, held, sql)
    tx = Transformer(driver)  # a fraction of a microsecond
    params = tx.dump_sequence([values[n] for n in names], [PyFormat.TEXT] * len(names))
    kept = None
    if name in held.reads:
        kept = _kept(held, name, params)
        if kept is None and _queued_ahead(held, name, params):
            _pipeline(pgconn, held, [], begin=_begin(driver))  # it is in there: not twice
            kept = _kept(held, name, params)
    begin = _begin(driver)
    if kept is not None:  # read ahead (run_ahead), and nothing written since
        result = kept
    elif held.queued or begin is not None:
        result = _pipeline(pgconn, held, [(name, params, _NOT)], begin=begin)[-1]
    else:
        if name not in held.reads:
            held.ahead.clear()  # what was read ahead is from before this write
        # libpq takes None for NULL; psycopg's stub for exec_prepared leaves it out
        result = _check(pgconn.exec_prepared(name, cast(list[bytes], params)), held)
    if result.status != pq.ExecStatus.TUPLES_OK:
        return [], result.command_tuples or 0
    tx.set_pgresult(result)
    return tx.load_rows(0, result.ntuples, tuple), result.ntuples


def _kept(held: _Connection, name: bytes, params: Sequence[Any]) -> pq.abc.PGresult | None:
    """The result of this read read ahead, taken (a read ahead answers once)."""
    key = _key(name, params)
    kept = held.ahead.pop(key, None)
    return kept if kept is not None else held.lasting.pop(key, None)


def _queued_ahead(held: _Connection, name: bytes, params: Sequence[Any]) -> bool:
    return any((n, p) == (name, params) and k != _NOT for n, p, k in held.queued)


def run_many(driver: Any, sql: str, many: Sequence[Mapping[str, Any]]) -> int | None:
    """One statement run once per set of values, all sent before any answer is read (libpq's
    pipeline mode: one round trip); the rows touched. None as for `run`."""
    held = _usable(driver, opening=True)
    if held is None:
        return None
    sent = _dumped(driver, held, sql, many)
    results = _pipeline(driver.pgconn, held, sent, begin=_begin(driver))
    return sum(r.command_tuples or 0 for r in results[-len(many) :]) if many else 0


def run_later(driver: Any, sql: str, many: Sequence[Mapping[str, Any]]) -> bool:
    """Queue writes whose answer nobody reads, to go with the connection's next statement or
    before its COMMIT (`drain`); False, having queued nothing, where `run` would answer None.
    Their errors are raised there."""
    held = _usable(driver)
    if held is None:
        return False
    held.queued.extend(_dumped(driver, held, sql, many))
    held.ahead.clear()  # a read after this write in the program must see it
    return True


def run_ahead(driver: Any, sql: str, values: Mapping[str, Any], *, lasting: bool = False) -> bool:
    """Queue a read to go with the connection's next statement, its rows kept for the `run` of
    the same statement with the same values — unless something is written before it, which
    drops every read ahead, except a `lasting` one (whose answer no write changes). It may be
    the transaction's first: the BEGIN psycopg would send goes before it. False, having queued
    nothing, where `run` would answer None."""
    held = _usable(driver, opening=True)
    if held is None:
        return False
    ((name, params, _keep),) = _dumped(driver, held, sql, [values])
    key = _key(name, params)
    if key in held.ahead or key in held.lasting or _queued_ahead(held, name, params):
        return True  # read ahead already, and nothing written since
    held.queued.append((name, params, _LASTING if lasting else _AHEAD))
    return True


def drain(driver: Any) -> None:
    """Send what is queued on this connection (before a statement not sent from here)."""
    held = _HELD.get(driver)
    if held is not None and held.queued:  # reads ahead may open the transaction
        _pipeline(driver.pgconn, held, [], begin=_begin(driver))


def discard(driver: Any) -> None:
    """Forget what is queued or read ahead on this connection (its transaction ended)."""
    held = _HELD.get(driver)
    if held is not None:
        held.queued.clear()
        held.ahead.clear()
        held.lasting.clear()


def sent_elsewhere(driver: Any, sql: str) -> None:
    """A statement is about to be sent by another way (psycopg's cursor): what is queued goes
    first, and a write drops what was read ahead."""
    drain(driver)
    held = _HELD.get(driver)
    if held is not None and held.ahead and not _reads(sql):
        held.ahead.clear()


def _dumped(
    driver: Any, held: _Connection, sql: str, many: Sequence[Mapping[str, Any]]
) -> list[_Sent]:
    # every value dumped before anything is sent: one that cannot be leaves nothing half-sent
    name, names = _prepared(driver.pgconn, held, sql)
    tx = Transformer(driver)
    formats = [PyFormat.TEXT] * len(names)
    return [(name, tx.dump_sequence([v[n] for n in names], formats), _NOT) for v in many]


def commit(driver: Any) -> bool:
    """The queued writes and COMMIT in one round trip; False, having sent nothing, where no
    write is queued (psycopg's own COMMIT ends the transaction). After it psycopg finds the
    connection idle, and its commit sends nothing. Reads still queued ahead are dropped: the
    transaction ends before anyone could read them."""
    held = _HELD.get(driver)
    if held is None:
        return False
    held.queued = [q for q in held.queued if q[2] == _NOT]
    if not held.queued:
        return False
    _pipeline(driver.pgconn, held, [], begin=_begin(driver), end=b"COMMIT")
    return True


def _pipeline(
    pgconn: Any,
    held: _Connection,
    statements: list[_Sent],
    *,
    begin: bytes | None = None,
    end: bytes | None = None,
) -> list[pq.abc.PGresult]:
    """`begin` if any, the queued writes, `statements` and `end` if any, sent in libpq's
    pipeline mode (one round trip); their results, checked in order: the first error is
    raised (the rest were aborted). BEGIN's and `end`'s results are not among them."""
    sent, held.queued = [*held.queued, *statements], []
    if not sent:
        return []
    pgconn.enter_pipeline_mode()
    try:
        if begin is not None:
            pgconn.send_query_params(begin, None)
        for name, params, _keep in sent:
            pgconn.send_query_prepared(name, cast(list[bytes], params))
        if end is not None:
            pgconn.send_query_params(end, None)
        pgconn.pipeline_sync()
        results = _pipeline_results(pgconn)
    except BaseException:
        with contextlib.suppress(psycopg.Error):  # a lost connection cannot leave the mode
            pgconn.exit_pipeline_mode()
        raise
    pgconn.exit_pipeline_mode()
    checked = [_check(result, held) for result in results]
    if begin is not None:
        checked = checked[1:]
    if end is not None:
        checked = checked[:-1]
    writes = [n for n, (name, _p, _k) in enumerate(sent) if name not in held.reads]
    if writes:  # what was read ahead before it, here or earlier, may be stale
        held.ahead.clear()
    last_write = writes[-1] if writes else -1
    for n, ((name, params, keep), result) in enumerate(zip(sent, checked, strict=True)):
        if keep == _LASTING:
            held.lasting[_key(name, params)] = result
        elif keep == _AHEAD and n > last_write:  # read after every write sent: saw them all
            held.ahead[_key(name, params)] = result
    return checked


def _pipeline_results(pgconn: Any) -> list[pq.abc.PGresult]:
    """Every statement's result up to the pipeline's sync, waiting on the socket (which
    releases the GIL) for what has not come yet."""
    fd = pgconn.socket
    while pgconn.flush():  # what did not fit the socket's buffer
        _wait(fd, select.POLLOUT)
    results: list[pq.abc.PGresult] = []
    while True:
        while pgconn.is_busy():
            _wait(fd, select.POLLIN)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:  # the end of one statement's results
            continue
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            return results
        results.append(result)


def _wait(fd: int, event: int) -> None:
    """Until the socket is ready (poll: select() refuses descriptors past 1023)."""
    poller = select.poll()
    poller.register(fd, event | select.POLLERR | select.POLLHUP)
    poller.poll()


def _check(result: pq.abc.PGresult, held: _Connection) -> pq.abc.PGresult:
    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return result
    error = errors.error_from_result(result, encoding=held.encoding)
    if error.sqlstate is None:  # libpq's own (the connection lost), as psycopg's cursor says it
        raise psycopg.OperationalError(str(error)) from error
    if isinstance(error, errors.InvalidSqlStatementName):
        # dropped behind psycopg's back (a DEALLOCATE ALL it did not see): this transaction
        # fails, the connection's next one prepares again
        held.names.clear()
    raise error
