"""A prepared statement run straight on libpq, for a psycopg connection inside a transaction.

psycopg's cursor spends some 35 µs of Python per statement around the database's work (a
cursor object, the query's conversion, its own prepared-statement bookkeeping, a generator
waiting on the socket): for a trivial prepared SELECT, 65–75 µs of CPU through the cursor
against 32 µs here (docs/performance.md). A sale runs some sixteen statements. Here each
statement is prepared on the server once per connection under a name of ours, and each run is
psycopg's own parameter dumping and row loading (its C `Transformer`, the same adapters the
cursor uses) around one `PQexecPrepared`, which releases the GIL while it waits.

Only inside a transaction: psycopg opens its transaction lazily, with the first statement sent
through it, so a statement on a connection with no transaction open goes through the cursor
(`run` answers None). Nor with `prepare_threshold=None`, which is how psycopg is told that
server-side prepared statements are not wanted (PgBouncer in transaction mode).
"""

from __future__ import annotations

import functools
import itertools
import re
import weakref
from collections.abc import Callable, Mapping
from typing import Any, cast

import psycopg
from psycopg import errors, pq
from psycopg.adapt import PyFormat, Transformer

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


def run(
    driver: Any, sql: str, values: Mapping[str, Any]
) -> tuple[list[tuple[Any, ...]], int] | None:
    """The rows (processed by psycopg's loaders) and the rows touched, psycopg's exceptions; None
    where the statement must go through the cursor (outside a transaction, not psycopg)."""
    held = _HELD.get(driver)
    if held is None:
        if not isinstance(driver, psycopg.Connection):
            return None
        held = _HELD[driver] = _Connection(driver)
    if (
        not held.known
        or driver.prepare_threshold is None
        or driver.pgconn.transaction_status != pq.TransactionStatus.INTRANS
    ):
        return None
    text, names = numbered(sql)
    pgconn = driver.pgconn
    name = held.names.get(text)
    if name is None:
        name = f"omo_{next(_NAMES)}".encode()
        _check(pgconn.prepare(name, text, None), held)
        held.names[text] = name
    tx = Transformer(driver)  # a fraction of a microsecond
    params = tx.dump_sequence([values[n] for n in names], [PyFormat.TEXT] * len(names))
    # libpq takes None for NULL; psycopg's stub for exec_prepared leaves it out
    result = _check(pgconn.exec_prepared(name, cast(list[bytes], params)), held)
    if result.status != pq.ExecStatus.TUPLES_OK:
        return [], result.command_tuples or 0
    tx.set_pgresult(result)
    return tx.load_rows(0, result.ntuples, tuple), result.ntuples


def _check(result: pq.abc.PGresult, held: _Connection) -> pq.abc.PGresult:
    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return result
    error = errors.error_from_result(result, encoding=held.encoding)
    if isinstance(error, errors.InvalidSqlStatementName):
        # dropped behind psycopg's back (a DEALLOCATE ALL it did not see): this transaction
        # fails, the connection's next one prepares again
        held.names.clear()
    raise error
