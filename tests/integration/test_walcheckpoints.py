"""SQLite's log is copied back into the file by a thread, not by the committing writer."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from omo import walcheckpoints
from omo.db import make_engine
from omo.settings import Settings
from omo.shared import forked


def _threads_for(path: Path) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"wal-checkpoint {path}"]


def _wait_for(test: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if test():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_commits_are_copied_back_by_the_thread_and_it_ends_when_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walcheckpoints, "IDLE_EXIT_S", 0.3)
    path = tmp_path / "wal.sqlite"
    engine = make_engine(Settings(database_url=f"sqlite:///{path}"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)")
    before = path.stat().st_size
    for n in range(4):  # 4 × 2 MB: 2,000 pages, far below the writer's own backstop
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO blobs (body) SELECT randomblob(1000) FROM "
                "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)"
                " SELECT i FROM n)"
            )
        assert n > 0 or _threads_for(path), "the first commit starts the thread"
    # the pages reach the database file although no writer crossed its checkpoint threshold
    assert _wait_for(lambda: path.stat().st_size >= before + 8_000_000)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == (
            walcheckpoints.BACKSTOP_PAGES
        )
        assert conn.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == 8_000
    assert _wait_for(lambda: not _threads_for(path)), "an idle thread ends"
    with engine.begin() as conn:  # and a later commit starts one again
        conn.exec_driver_sql("INSERT INTO blobs (body) VALUES (x'00')")
    assert _threads_for(path)
    engine.dispose()


def _with_table(path: Path) -> sa.Engine:
    """An engine on a new file with a table t, its thread started by the commit."""
    engine = make_engine(Settings(database_url=f"sqlite:///{path}"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    assert _threads_for(path)
    return engine


def test_a_process_about_to_fork_ends_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "fork.sqlite"
    engine = _with_table(path)
    # forking beside another thread is refused (a child could inherit a lock it holds), so
    # can_fork ends it rather than run the import's validation on one core
    if forked.cores() > 1:
        forked.can_fork()
    else:
        walcheckpoints.stop_all()
    assert not _threads_for(path)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert _threads_for(path), "the next commit starts it again"
    engine.dispose()


def test_a_connection_closed_beside_others_leaves_the_thread_running(tmp_path: Path) -> None:
    path = tmp_path / "overflow.sqlite"
    engine = _with_table(path)
    reader = engine.execution_options(omo_readonly=True)
    held = [reader.connect() for _ in range(engine.pool.size() + 2)]  # two beyond the pool
    for conn in held:
        conn.exec_driver_sql("SELECT 1")
    for conn in held:
        conn.close()  # the two overflow connections are closed, the pool is full
    assert engine.pool.checkedin() == engine.pool.size()
    assert _threads_for(path), "a request returning a connection does not wait for the thread"
    engine.dispose()
    assert not _threads_for(path)


def test_after_dispose_or_exit_the_file_alone_holds_every_commit(tmp_path: Path) -> None:
    path = tmp_path / "copy.sqlite"
    engine = _with_table(path)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    time.sleep(walcheckpoints.SETTLE_S * 3)  # the thread has connected and copied
    engine.dispose()  # the thread's connection closes too, so the last close folds the log in
    assert not Path(f"{path}-wal").exists()
    shutil.copy(path, tmp_path / "copied.sqlite")
    script = (
        "import sys\n"
        "from omo.db import make_engine\n"
        "from omo.settings import Settings\n"
        "e = make_engine(Settings(database_url='sqlite:///' + sys.argv[1]))\n"
        "with e.begin() as c:\n"
        "    c.exec_driver_sql('INSERT INTO t VALUES (2)')\n"
        "import time; time.sleep(0.2)\n"
    )  # and a process that exits without disposing of its engine
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "copied.sqlite")], check=True)
    shutil.copy(tmp_path / "copied.sqlite", tmp_path / "again.sqlite")
    with sqlite3.connect(tmp_path / "again.sqlite") as conn:
        assert conn.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]


def test_a_file_deleted_before_the_thread_starts_is_not_created_again(tmp_path: Path) -> None:
    path = tmp_path / "gone.sqlite"
    walcheckpoints.nudge(str(path))
    assert _wait_for(lambda: not _threads_for(path))
    assert not path.exists()


def test_memory_databases_have_no_thread() -> None:
    engine = make_engine(Settings(database_url="sqlite:///:memory:"))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    assert not [t for t in threading.enumerate() if t.name.startswith("wal-checkpoint :memory:")]
    engine.dispose()
