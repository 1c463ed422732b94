"""Backups a restore can trust. SQLite: the online backup API copies a consistent snapshot
while the server keeps writing. PostgreSQL: pg_dump's custom format (a consistent snapshot
too), restored with pg_restore into an empty database; the binaries come from PATH or
/usr/lib/postgresql/*/bin (OMO_PG_BINDIR)."""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from omo.shared.files import written_whole


class BackupFailed(RuntimeError):
    pass


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database:
        raise BackupFailed("an in-memory SQLite database has nothing to back up")
    return Path(database)


def _pg_tool(name: str) -> str:
    if os.environ.get("OMO_PG_BINDIR"):
        return str(Path(os.environ["OMO_PG_BINDIR"]) / name)
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if candidates:
        return candidates[-1]
    raise BackupFailed(f"{name} not found (apt-get install postgresql-client, or OMO_PG_BINDIR)")


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The connection string for libpq tools, the password passed in the environment (never in
    the process list)."""
    parsed = make_url(url).set(drivername="postgresql")
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed.set(password=None).render_as_string(hide_password=False), env


def backup(url: str, target: Path) -> Path:
    """Write a backup of the database at `url` to `target` (refuses to overwrite). The backup
    is written beside `target` and renamed onto it when whole: a failed one leaves nothing."""
    if target.exists():
        raise BackupFailed(f"{target} exists; choose a new file")
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if not path.is_file():  # connecting would make an empty database there, and back it up
            raise BackupFailed(f"no database at {path}")
        _copy_sqlite(path, target)
        return target
    conninfo, env = _libpq(url)
    with _written(target) as part:
        _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={part}", conninfo],
             env)  # fmt: skip
    return target


def restore(source: Path, url: str) -> None:
    """Restore a backup into the database at `url`, which must be empty (a new SQLite file, or
    a freshly created PostgreSQL database): a restore never mixes with live data."""
    if not source.exists():
        raise BackupFailed(f"no backup at {source}")
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path.exists() and path.stat().st_size > 0:
            raise BackupFailed(f"{path} exists; restore into a new file")
        _copy_sqlite(source, path)
        return
    conninfo, env = _libpq(url)
    _run([_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={conninfo}",
          str(source)], env)  # fmt: skip


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup of the OMO database at `source` into a new file at `target`."""
    from_db = _omo_database(source)
    try:
        with _written(target) as part:
            to_db = sqlite3.connect(part)
            try:
                from_db.backup(to_db)
            finally:
                to_db.close()
    finally:
        from_db.close()


def _omo_database(path: Path) -> sqlite3.Connection:
    """A connection to the SQLite file at `path`, refused unless it holds an OMO database (one
    `omo db upgrade` made: it has a schema version)."""
    conn = None
    try:
        conn = sqlite3.connect(path)
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
    except sqlite3.Error:
        if conn is not None:
            conn.close()
        raise BackupFailed(f"{path} is not an SQLite database") from None
    if found is None:
        conn.close()
        raise BackupFailed(f"{path} holds no OMO database (it has no schema version)")
    return conn


@contextmanager
def _written(target: Path) -> Iterator[Path]:
    """`written_whole`, a file that cannot be written said as a BackupFailed."""
    try:
        with written_whole(target) as part:
            yield part
    except (OSError, sqlite3.Error) as exc:
        raise BackupFailed(f"cannot write {target}: {exc}") from None


def _run(args: list[str], env: dict[str, str]) -> None:
    # a list, no shell: the arguments are our tool's path, our URL and the operator's file
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)  # noqa: S603
    if done.returncode != 0:
        raise BackupFailed(f"{Path(args[0]).name} failed: {done.stderr.strip()[:500]}")
