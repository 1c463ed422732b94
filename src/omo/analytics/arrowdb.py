"""Arrow in and out of the database through ADBC, for the batch path only.

ADBC drivers move whole columns between SQLite/PostgreSQL and Arrow without a Python object per
value: 2.3 M orders read in 2.7 s where the sqlite3 module and pyarrow.array take 8.3 s, and a
million member scores written in ~1 s where a driver-level executemany takes 14 s plus 6 s to
build its tuples (docs/performance.md). The request path stays on SQLAlchemy.

The ADBC SQLite driver links its own copy of SQLite. Two copies in one process corrupt each
other's POSIX locks (sqlite.org/howtocorrupt.html 2.2.1; here it showed as "disk I/O error" in
the sqlite3 module right after an ingest), so on SQLite every ADBC transaction runs in a child
process (`isolated`), the ordinary multi-process case SQLite is built for.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import URL

BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")


class ChildFailed(RuntimeError):
    """The child process's error, by type name and message."""


def isolated(url: URL, work: Callable[..., T], *args: Any) -> T:
    """work(url, *args), in a child interpreter when the database is SQLite. `work` must be a
    module-level function; its arguments and result travel through a private temporary
    directory: Arrow tables and arrays (alone, or in a tuple, list or dict) as Arrow IPC files
    that the reader memory-maps, the rest pickled. (Pickling and unpickling the snapshot of the
    10 M-order world, 1.6 GB of Arrow, cost 9.3 s.)"""
    if url.get_backend_name() != "sqlite":
        return work(url, *args)
    # mapped files outlive their directory entry on POSIX; elsewhere the folder may stay behind
    with tempfile.TemporaryDirectory(prefix="omo-adbc-", ignore_cleanup_errors=True) as name:
        child = _Child(Path(name), "only", url, work, args)
        return child.result()  # type: ignore[no-any-return]


def isolated_in_turn(url: URL, first: tuple[Any, ...], second: tuple[Any, ...]) -> tuple[Any, Any]:
    """(work, *args) pairs run as `isolated` does, both at once on SQLite (two cores read two
    tables at once), the second started only once the first's read transaction has begun: the
    second sees the database as of the first's instant or later, never earlier. Elsewhere,
    one after the other."""
    if url.get_backend_name() != "sqlite":
        return first[0](url, *first[1:]), second[0](url, *second[1:])
    with tempfile.TemporaryDirectory(prefix="omo-adbc-", ignore_cleanup_errors=True) as name:
        folder = Path(name)
        pinned = folder / "first-pinned"
        one = _Child(folder, "first", url, first[0], first[1:], pinned=pinned)
        while not pinned.exists() and one.running():
            time.sleep(0.002)
        two = _Child(folder, "second", url, second[0], second[1:])
        return one.result(), two.result()


class _Child:
    """work(url, *args) started in a fresh interpreter (not multiprocessing: nothing of the
    caller's __main__ re-runs); `pinned` is a file it creates once its read transaction has
    begun."""

    def __init__(
        self, folder: Path, tag: str, url: URL, work: Callable[..., Any], args: tuple[Any, ...],
        *, pinned: Path | None = None,
    ) -> None:  # fmt: skip
        self.folder = folder
        request, self.answer = folder / f"{tag}-request", folder / f"{tag}-answer"
        with request.open("wb") as f:
            packed = _pack(args, folder, f"{tag}-in")
            pickle.dump((work.__module__, work.__qualname__, url, packed), f, protocol=5)
        env = {**os.environ, PINNED: str(pinned)} if pinned else None
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "omo.analytics.arrowdb", str(request), str(self.answer)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip

    def running(self) -> bool:
        return self.process.poll() is None

    def result(self) -> Any:
        _, stderr = self.process.communicate()
        if not self.answer.exists():
            raise ChildFailed(f"the ADBC child exited {self.process.returncode}: {stderr[-2000:]}")
        with self.answer.open("rb") as f:
            ok, value = pickle.load(f)  # noqa: S301 - written by the child above, just now
        if not ok:
            raise ChildFailed(value)
        return _unpack(value, self.folder)


PINNED = "OMO_ADBC_PINNED"  # the child's marker file, for isolated_in_turn


def _child(request: Path, answer: Path) -> None:
    with request.open("rb") as f:
        module, name, url, args = pickle.load(f)  # noqa: S301 - written by our parent
    work = getattr(importlib.import_module(module), name)
    try:
        value = work(url, *_unpack(args, request.parent))
        result: tuple[bool, Any] = (True, _pack(value, answer.parent, f"{request.stem}-out"))
    except Exception as exc:
        result = (False, f"{type(exc).__name__}: {exc}")
    with answer.open("wb") as f:
        pickle.dump(result, f, protocol=5)


class _ArrowFile:
    """Stands in the pickle for an Arrow table written beside it (an array as the table's one
    column)."""

    def __init__(self, name: str, *, array: bool = False) -> None:
        self.name = name
        self.array = array


def _pack(value: Any, folder: Path, prefix: str) -> Any:
    import pyarrow as pa

    if isinstance(value, pa.Table | pa.Array):
        table = value if isinstance(value, pa.Table) else pa.table({"values": value})
        path = folder / f"{prefix}-{next(_files)}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return _ArrowFile(path.name, array=isinstance(value, pa.Array))
    if isinstance(value, tuple | list):
        return type(value)(_pack(v, folder, prefix) for v in value)
    if isinstance(value, dict):
        return {k: _pack(v, folder, prefix) for k, v in value.items()}
    return value


def _unpack(value: Any, folder: Path) -> Any:
    import pyarrow as pa

    if isinstance(value, _ArrowFile):
        table = pa.ipc.open_file(pa.memory_map(str(folder / value.name))).read_all()
        return table["values"].combine_chunks() if value.array else table
    if isinstance(value, tuple | list):
        return type(value)(_unpack(v, folder) for v in value)
    if isinstance(value, dict):
        return {k: _unpack(v, folder) for k, v in value.items()}
    return value


_files = count()


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
    def indexes_dropped(self, table: str) -> Iterator[None]:
        """On SQLite, `table`'s own indexes dropped and then built again as they were, for a
        bulk load: one sorted build instead of a random insert per row (a million member
        scores load in 4.7 s instead of 8.5 s). Readers see the old snapshot meanwhile. On
        PostgreSQL nothing is dropped: DROP INDEX would lock the table against readers until
        the transaction ends."""
        if self.dialect != "sqlite":
            yield
            return
        self.cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",  # NULL: the automatic indexes of constraints, which stay
            (table,),
        )
        indexes = self.cursor.fetch_arrow_table().to_pylist()
        for index in indexes:
            self.execute(f'DROP INDEX "{index["name"]}"')
        yield
        for index in indexes:
            self.execute(index["sql"])


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
        if dialect == "sqlite" and not write and PINNED in os.environ:
            # a WAL read transaction takes its snapshot at its first read: take it now, then
            # tell the parent waiting to start the next reader
            connection.arrow("SELECT count(*) FROM sqlite_master")
            Path(os.environ.pop(PINNED)).touch()
        yield connection
        connection.cursor.close()
        raw.commit() if write else raw.rollback()
    except BaseException:
        connection.cursor.close()
        raw.rollback()
        raise
    finally:
        raw.close()


if __name__ == "__main__":
    # run as the importable module, not __main__: what it pickles must load in the parent
    importlib.import_module("omo.analytics.arrowdb")._child(Path(sys.argv[1]), Path(sys.argv[2]))
