"""The analytics snapshot reads what SQLite's ADBC driver would mistype: a column NULL in its
first rows (lines without a category, events without a survey) and set later."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import URL

from omo.analytics.arrowdb import isolated_in_turn, transaction
from omo.analytics.snapshot import read_snapshot
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
