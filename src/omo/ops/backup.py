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
from pathlib import Path

from sqlalchemy.engine import make_url


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
    """Write a backup of the database at `url` to `target` (refuses to overwrite)."""
    if target.exists():
        raise BackupFailed(f"{target} exists; choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        source = sqlite3.connect(_sqlite_path(url))
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return target
    conninfo, env = _libpq(url)
    _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}", conninfo], env)
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
        backup_db = sqlite3.connect(source)
        target = sqlite3.connect(path)
        try:
            backup_db.backup(target)
        finally:
            target.close()
            backup_db.close()
        return
    conninfo, env = _libpq(url)
    _run([_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={conninfo}",
          str(source)], env)  # fmt: skip


def _run(args: list[str], env: dict[str, str]) -> None:
    # a list, no shell: the arguments are our tool's path, our URL and the operator's file
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)  # noqa: S603
    if done.returncode != 0:
        raise BackupFailed(f"{Path(args[0]).name} failed: {done.stderr.strip()[:500]}")
