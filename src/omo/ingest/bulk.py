"""Appending many pre-validated rows fast: explicit ids, executemany in chunks, one transaction.

Used by the demo loader (and by bulk import for rows that need no identity decision). Rows are
plain dicts keyed by column name, with values already in their database form where it matters
for speed: money as integer cents (the Money type stores cents), datetimes as aware UTC.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from omo.shared import libpq
from omo.shared.sqltypes import UtcDateTime

CHUNK = 5_000


def take_ids(conn: Connection, table: sa.Table, n: int) -> list[int]:
    """Reserve n ids for rows appended next to live traffic.

    PostgreSQL hands them out from the table's sequence (concurrent API writes use it too);
    SQLite has one writer at a time, and this runs inside its write transaction.
    """
    if n <= 0:
        return []
    if conn.dialect.name == "postgresql":
        # the sequence named once: pg_get_serial_sequence in the select list ran for every id
        # (90,000 ids: 0.6 s against 0.1 s)
        seq = conn.exec_driver_sql(
            f"SELECT pg_get_serial_sequence('{table.name}', 'id')::regclass::oid"
        ).scalar_one()
        rows = conn.exec_driver_sql(
            f"SELECT nextval({int(seq)}::oid::regclass) FROM generate_series(1, {int(n)})"  # noqa: S608
        )
        return [r[0] for r in rows]
    first = next_id(conn, table)
    return list(range(first, first + n))


def next_id(conn: Connection, table: sa.Table) -> int:
    """The first free id of a table (ids are assigned by the loader, not the database)."""
    top = conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
    return int(top or 0) + 1


def append(conn: Connection, table: sa.Table, rows: Iterable[dict[str, Any]]) -> int:
    """Insert rows (money in cents, datetimes aware UTC) in chunks; returns the count."""
    names = [c.name for c in table.columns]
    return append_tuples(conn, table, names, (tuple([row.get(n) for n in names]) for row in rows))


def append_tuples(
    conn: Connection, table: sa.Table, names: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> int:
    """Insert rows given as value sequences in the order of `names`; returns the count.

    Rows (tuples) go to the driver's executemany (COPY on PostgreSQL) as they are: no per-value
    SQLAlchemy processing, which is most of the cost of a Core insert of many small rows. Only
    the values whose column type needs it are converted (JSON, and dates on SQLite). A column
    left out must be nullable or have a server default: there is no ORM here to fill it in.
    """
    _check_complete(table, names)
    convert = _converters(table, names, conn.dialect.name)
    if convert:
        rows = (_converted(row, convert) for row in rows)
    if conn.dialect.name == "postgresql":
        return _copy(conn, table, names, rows)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608 - names from our models
        f"VALUES ({', '.join(['?'] * len(names))})"
    )
    n = 0
    for chunk in _chunks(rows, CHUNK):
        conn.exec_driver_sql(sql, chunk)
        n += len(chunk)
    return n


def _converted(
    row: Sequence[Any], convert: list[tuple[int, Callable[[Any], Any]]]
) -> tuple[Any, ...]:
    values = list(row)
    for pos, fn in convert:
        if values[pos] is not None:
            values[pos] = fn(values[pos])
    return tuple(values)


def _check_complete(table: sa.Table, names: Sequence[str]) -> None:
    missing = [
        c.name
        for c in table.columns
        if c.name not in names
        and not c.nullable
        and c.server_default is None
        and c is not table.autoincrement_column  # the database numbers the row
    ]
    if missing:
        raise ValueError(f"{table.name}: no value for {', '.join(missing)}")


def _copy(conn: Connection, table: sa.Table, names: Sequence[str], rows: Iterable[Any]) -> int:
    """PostgreSQL's own bulk load: COPY … FROM STDIN, on the transaction's connection."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    dbapi = conn.dialect.loaded_dbapi
    n = 0
    try:
        libpq.drain(conn.connection.driver_connection)  # writes queued before go first
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
    except dbapi.Error as exc:
        # as SQLAlchemy raises the driver's errors (IntegrityError …), so that callers such as
        # UnitOfWork.run tell a lost race from bad input the same way for COPY as for INSERT
        raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
    return n


def reset_sequences(conn: Connection, tables: Sequence[sa.Table]) -> None:
    """On PostgreSQL, move each id sequence past the ids the loader assigned."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608 - our table names
            f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
        )


def _converters(
    table: sa.Table, names: Sequence[str], dialect: str
) -> list[tuple[int, Callable[[Any], Any]]]:
    """What the column types would have done to each value, for the types that need it."""
    out: list[tuple[int, Callable[[Any], Any]]] = []
    for pos, name in enumerate(names):
        kind = table.columns[name].type
        if isinstance(kind, sa.JSON):
            out.append((pos, json.dumps))
        elif dialect == "sqlite" and isinstance(kind, UtcDateTime):
            out.append((pos, _last_remembered(_sqlite_utc)))
        elif dialect == "sqlite" and isinstance(kind, sa.Date):
            out.append((pos, date.isoformat))
    return out


def _last_remembered(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """fn, answering a value given again (the same object: a batch's one `now` in every row)
    without calling fn."""
    last: list[Any] = [object(), None]

    def convert(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, fn(value)
        return last[1]

    return convert


def _sqlite_utc(value: datetime) -> str:
    # the storage format of SQLAlchemy's SQLite DateTime, in UTC (what UtcDateTime writes):
    # 2026-05-30 21:50:24.000000, from isoformat (strftime took 2.2 µs a value, this 1.3)
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk
