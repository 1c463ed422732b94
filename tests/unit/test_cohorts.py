"""Monthly cohorts: the integer month arithmetic against Python's calendar, and a small world
counted by hand on DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from omo.analytics.cohorts import cohort_counts, month_index, month_of, retention_table
from omo.analytics.engine import runner

TAIPEI = 8 * 3600


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


@settings(max_examples=300)
@given(st.integers(0, 4_102_444_800), st.sampled_from([0, TAIPEI, -5 * 3600]))
def test_month_index_is_the_calendar_month(seconds: int, offset: int) -> None:
    local = datetime.fromtimestamp(seconds, UTC) + timedelta(seconds=offset)
    assert month_of(seconds, utc_offset_s=offset) == (local.year - 1970) * 12 + local.month - 1


def test_month_index_runs_the_same_on_the_engine() -> None:
    seconds = [0, ts("2026-01-31T15:59:59+00:00"), ts("2026-01-31T16:00:00+00:00"),
               ts("2024-02-29T12:00:00+00:00"), ts("2099-12-31T23:00:00+00:00")]  # fmt: skip
    with runner("duckdb") as engine:
        t = engine.table(pa.table({"s": seconds}), "t")
        got = engine.to_arrow(t.select(m=month_index(t.s, utc_offset_s=TAIPEI)))["m"].to_pylist()
    assert got == [month_of(s, utc_offset_s=TAIPEI) for s in seconds]
    assert got[1:3] == [(2026 - 1970) * 12, (2026 - 1970) * 12 + 1]  # Taipei's 1 February


def test_cohorts_of_a_small_world_counted_by_hand() -> None:
    members = pa.table({
        "member_id": [1, 2, 3, 4, 5],
        "joined_s": [ts("2026-01-15T02:00:00+00:00"),
                     ts("2026-01-31T20:00:00+00:00"),  # 1 February in Taipei
                     ts("2026-02-10T02:00:00+00:00"), ts("2026-03-05T02:00:00+00:00"),
                     ts("2026-04-02T02:00:00+00:00")],  # after the as-of day
    })  # fmt: skip
    orders = pa.table({
        "member_id": [1, 1, 1, 2, 3, 3, 1],
        "ordered_s": [ts("2026-01-20T02:00:00+00:00"), ts("2026-01-25T02:00:00+00:00"),
                      ts("2026-03-01T02:00:00+00:00"), ts("2026-02-03T02:00:00+00:00"),
                      ts("2026-01-05T02:00:00+00:00"),  # before 3 joined: not a cohort month
                      ts("2026-03-10T02:00:00+00:00"),
                      ts("2026-04-01T02:00:00+00:00")],  # after the as-of day
    })  # fmt: skip
    as_of = ts("2026-03-31T12:00:00+00:00")
    with runner("duckdb") as engine:
        sizes, active = cohort_counts(
            engine.table(members, "m"), engine.table(orders, "o"), as_of_s=as_of,
            utc_offset_s=TAIPEI,
        )  # fmt: skip
        table = retention_table(
            engine.to_arrow(sizes), engine.to_arrow(active),
            last_month=month_of(as_of, utc_offset_s=TAIPEI),
        )  # fmt: skip
    rows = list(zip(*(table[c].to_pylist() for c in table.column_names), strict=True))
    assert rows == [
        ("2026-01", 0, 1, 1), ("2026-01", 1, 1, 0), ("2026-01", 2, 1, 1),
        ("2026-02", 0, 2, 1), ("2026-02", 1, 2, 1),
        ("2026-03", 0, 1, 0),
    ]  # fmt: skip
