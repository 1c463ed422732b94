"""SQLite's write-ahead log copied back into the database file by a thread of its own.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: that writer
copies the pages into the file and syncs it while holding the write lock, so every thousandth
page a till's commit (or a batch of merges) waits for the disk. Here each database file gets a
thread that runs a PASSIVE checkpoint shortly after commits — it copies what is committed,
never waits for or blocks a writer, and releases the GIL while SQLite works, so the copying
runs on another core. Writers keep a checkpoint of their own only as a backstop, far above
the default (a process without this thread, or a thread lagging far behind).

The thread starts on a database's first commit in a process and ends after a few idle seconds
(with a last checkpoint), so short-lived engines (tests, CLI jobs) leave nothing running. It
also ends, to start again on the next commit, when the engine closes a connection (so that
after `engine.dispose()` the last connection's close folds the log into the file, which can
then be copied alone), when the process exits, and before it forks work out
(`forked.can_fork`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading

from omo.shared import forked

# Writers checkpoint themselves only past this many log pages (40 MB of 4 KiB pages).
BACKSTOP_PAGES = 10_000
# After a commit, wait this long before copying: the commit has landed by then, and one
# checkpoint covers every commit of the interval (a till commits hundreds of times a second).
SETTLE_S = 0.05
IDLE_EXIT_S = 5.0

_GUARD = threading.Lock()
_BY_FILE: dict[tuple[int, str], _Checkpointer] = {}


def nudge(path: str) -> None:
    """A transaction on the database at `path` is committing: copy its pages back soon."""
    key = (os.getpid(), path)  # a forked child starts threads of its own
    with _GUARD:
        checkpointer = _BY_FILE.get(key)
        if checkpointer is None:
            checkpointer = _BY_FILE[key] = _Checkpointer(path)
    checkpointer.nudge()


def stop(path: str) -> None:
    """End the thread of the database at `path` now (it starts again on the next commit)."""
    with _GUARD:
        checkpointer = _BY_FILE.get((os.getpid(), path))
    if checkpointer is not None:
        checkpointer.stop()


def stop_all() -> None:
    """End this process's threads now (they start again on the next commit)."""
    with _GUARD:
        mine = [c for (pid, _p), c in _BY_FILE.items() if pid == os.getpid()]
    for checkpointer in mine:
        checkpointer.stop()


forked.stops_helpers(stop_all)
atexit.register(stop_all)  # a daemon thread killed at exit would leave its connection open


class _Checkpointer:
    def __init__(self, path: str) -> None:
        self.path = path
        self._nudged = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def nudge(self) -> None:
        with self._lock:
            self._nudged.set()
            if self._thread is None:
                self._stopping.clear()
                self._thread = threading.Thread(
                    target=self._run, name=f"wal-checkpoint {self.path}", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        try:  # mode=rw: a file deleted meanwhile is not created again
            conn = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, isolation_level=None)
        except sqlite3.Error:
            self._stopped()
            return
        try:
            while True:
                if self._nudged.wait(timeout=IDLE_EXIT_S) and not self._stopping.is_set():
                    self._stopping.wait(SETTLE_S)
                    self._nudged.clear()
                    self._checkpoint(conn)
                    if not self._stopping.is_set():
                        continue
                with self._lock:  # idle or stopped: leave, unless a nudge came in just now
                    if self._stopping.is_set() or not self._nudged.is_set():
                        self._thread = None
                        if not self._stopping.is_set():
                            self._checkpoint(conn)
                        return
        finally:
            conn.close()
            self._stopped()

    def stop(self) -> None:
        with self._lock:
            thread = self._thread
            self._stopping.set()
            self._nudged.set()
        if thread is not None:
            thread.join()

    def _stopped(self) -> None:
        with self._lock:
            if self._thread is threading.current_thread():
                self._thread = None

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        # PASSIVE copies what no reader still needs and returns at once when another
        # checkpoint holds the lock: it never waits for a writer. An error (the file went
        # away, a busy moment) leaves the pages to the next nudge or to the backstop.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
