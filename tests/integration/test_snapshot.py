"""The analytics snapshot and the ADBC batch path on SQLite: columns SQLite's ADBC driver would
mistype (NULL in their first rows, set later), the two readers in turn, and bulk loads that
drop and rebuild a table's indexes."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import URL

from omo.analytics.arrowdb import ChildFailed, isolated, isolated_in_turn, transaction
from omo.analytics.snapshot import read_snapshot, recent_events_sql
from omo.cli import alembic_config


def test_columns_null_in_their_first_rows_are_read(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    url = f"sqlite:///{path}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO order_lines (order_id, line_no, sku, category, quantity, unit_price, "
            "discount, line_total) VALUES (?, 1, 'A', ?, 1, 100, 0, 100)",
            [(n, None if n < 3000 else "帽子") for n in range(5000)],
        )
        db.executemany(
            "INSERT INTO events (event_id, kind, occurred_at, channel, member_id, survey, score, "
            "created_at) VALUES (?, ?, '2026-06-01 00:00:00.000000', 'web', 1, ?, ?, "
            "'2026-06-01 00:00:00.000000')",
            [(f"e{n}", "view" if n < 3000 else "feedback", None if n < 3000 else "nps",
              None if n < 3000 else 7) for n in range(5000)],
        )  # fmt: skip
    snapshot = read_snapshot(sa.make_url(url), as_of=datetime(2026, 6, 30, tzinfo=UTC))
    assert snapshot.lines.num_rows == 5000
    names = snapshot.categories.to_pylist()
    categories = [None if c is None else names[c] for c in snapshot.lines["category"].to_pylist()]
    assert (categories.count(None), categories.count("帽子")) == (3000, 2000)
    assert snapshot.skus.to_pylist() == ["A"] and set(snapshot.lines["sku"].to_pylist()) == {0}
    answers = list(
        zip(
            snapshot.events["survey"].to_pylist(), snapshot.events["score"].to_pylist(), strict=True
        )
    )
    assert (answers.count(("", None)), answers.count(("nps", 7))) == (3000, 2000)


def _events_indexes(db: sqlite3.Connection) -> dict[str, list[str]]:
    names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                      "AND tbl_name = 'events' AND sql IS NOT NULL")]  # fmt: skip
    return {n: [c for _, _, c in db.execute(f"PRAGMA index_info({n})")] for n in names}


def test_events_read_from_the_member_index_alone_and_only_it_holds_the_member(
    tmp_path: Path,
) -> None:
    """The refresh reads the events from one index, without a table look-up, and a merge that
    moves events rewrites the member's run in that index only (migration 0021): no other index
    of events holds member_id. Down and up again gives the same indexes."""
    path = tmp_path / "store.sqlite"
    url = f"sqlite:///{path}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    sql = recent_events_sql(datetime(2026, 1, 1, tzinfo=UTC), sqlite=True)  # what the refresh runs
    with sqlite3.connect(path) as db:
        plan = " ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        indexes = _events_indexes(db)
    assert "COVERING INDEX ix_events_member_occurred" in plan
    holding_member = {name for name, cols in indexes.items() if "member_id" in cols}
    assert holding_member == {"ix_events_member_occurred"}
    command.downgrade(alembic_config(url), "0020")  # type: ignore[arg-type]
    with sqlite3.connect(path) as db:
        assert _events_indexes(db)["ix_events_kind_occurred"][2] == "member_id"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    with sqlite3.connect(path) as db:
        assert _events_indexes(db) == indexes


def late_reader(url: URL, delay: float) -> dict[str, float]:
    """A reader that waits before its read transaction begins (run in a child)."""
    time.sleep(delay)
    beginning = time.monotonic()  # the transaction's snapshot is taken after this instant
    with transaction(url) as connection:
        rows = connection.arrow("SELECT count(*) AS n FROM members")["n"][0].as_py()
    return {"beginning": beginning, "rows": rows}


def prompt_reader(url: URL) -> pa.Table:
    with transaction(url) as connection:
        started = time.monotonic()
        return pa.table(
            {"started": [started], "rows": [connection.arrow("SELECT 1 AS x").num_rows]}
        )


def test_the_second_reader_begins_after_the_first(tmp_path: Path) -> None:
    """isolated_in_turn: the second child's read transaction starts only once the first's has
    (here the first waits half a second before it begins)."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    first, second = isolated_in_turn(sa.make_url(url), (late_reader, 0.5), (prompt_reader,))
    assert first["rows"] == 0 and second["rows"].to_pylist() == [1]
    assert second["started"][0].as_py() >= first["beginning"]


def load_scored(url: URL, rows: pa.Table) -> None:
    with transaction(url, write=True) as connection:
        connection.execute("DELETE FROM scored")
        with connection.indexes_dropped("scored"):
            connection.ingest("scored", rows)


def test_a_bulk_load_rebuilds_the_indexes_it_dropped(tmp_path: Path) -> None:
    """indexes_dropped: the table's indexes come back as they were, and a load that fails
    leaves rows and indexes as they were."""
    path = tmp_path / "store.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE scored (id INTEGER PRIMARY KEY, segment TEXT NOT NULL, "
                   "spend INTEGER, UNIQUE (segment, id))")  # fmt: skip
        db.execute("CREATE INDEX ix_scored_spend ON scored (spend DESC)")
        db.execute("INSERT INTO scored VALUES (1, 'vip', 10)")

    def schema() -> list[tuple[str, str | None]]:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()

    before = schema()
    url = sa.make_url(f"sqlite:///{path}")
    rows = pa.table({"id": [1, 2, 3], "segment": ["new", "lost", "new"], "spend": [5, 7, 9]})
    isolated(url, load_scored, rows)
    assert schema() == before
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM scored WHERE spend > 6").fetchone() == (2,)
        plan = db.execute("EXPLAIN QUERY PLAN SELECT id FROM scored WHERE spend > 6").fetchall()
    assert "ix_scored_spend" in str(plan)
    bad = pa.table({"id": [4, 4], "segment": ["x", "y"], "spend": [1, 2]})  # the same key twice
    with pytest.raises(ChildFailed):
        isolated(url, load_scored, bad)
    assert schema() == before
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id FROM scored ORDER BY id").fetchall() == [(1,), (2,), (3,)]
