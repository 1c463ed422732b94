"""Arrow in and out of the database through ADBC, for the batch path only.

ADBC drivers move whole columns between SQLite/PostgreSQL and Arrow without a Python object per
value: 2.3 M orders read in 2.7 s where the sqlite3 module and pyarrow.array take 8.3 s, and a
million member scores written in ~1 s where a driver-level executemany takes 14 s plus 6 s to
build its tuples (docs/performance.md). The request path stays on SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import URL

BUSY_TIMEOUT_MS = 30_000


class Connection:
    """One ADBC connection in one transaction; `dialect` is sqlite or postgresql."""

    def __init__(self, raw: Any, dialect: str) -> None:
        self.raw = raw
        self.dialect = dialect
        self.cursor = raw.cursor()

    def arrow(self, sql: str) -> Any:
        self.cursor.execute(sql)
        return self.cursor.fetch_arrow_table()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """`sql` with ? placeholders on either dialect."""
        if self.dialect == "postgresql":
            parts = sql.split("?")
            sql = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        self.cursor.execute(sql, params or None)

    def ingest(self, table: str, data: Any) -> None:
        """Append an Arrow table's rows to an existing table (columns matched by name)."""
        self.cursor.adbc_ingest(table, data, mode="append")


@contextmanager
def transaction(url: URL, *, write: bool = False) -> Iterator[Connection]:
    """A transaction that commits on success when `write`, else rolls back; reads see one
    instant of the database (SQLite read transaction, PostgreSQL repeatable read)."""
    dialect = url.get_backend_name()
    if dialect == "sqlite":
        import adbc_driver_sqlite.dbapi as sqlite

        mode = "rw" if write else "ro"
        raw = sqlite.connect(f"file:{url.database}?mode={mode}", autocommit=False)
        first = f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"
    elif dialect == "postgresql":
        import adbc_driver_postgresql.dbapi as postgresql

        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        raw = postgresql.connect(plain, autocommit=False)
        first = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ" + ("" if write else ", READ ONLY")
    else:
        raise ValueError(f"analytics cannot use {dialect} databases")
    connection = Connection(raw, dialect)
    try:
        connection.cursor.execute(first)
        yield connection
        connection.cursor.close()
        raw.commit() if write else raw.rollback()
    except BaseException:
        connection.cursor.close()
        raw.rollback()
        raise
    finally:
        raw.close()
