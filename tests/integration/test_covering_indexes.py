"""What every sale reads about its member — the tier window's spend and earned points, and the
points balance — is read from indexes alone on SQLite, so its cost does not grow with every row
of the member's history being fetched from the table (migration 0023)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from omo.points import ledger
from omo.shared.prepared import Prepared
from omo.tiers import service as tiers

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite's plans

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def plan(engine: sa.Engine, statement: Prepared, params: dict[str, object]) -> str:
    compiled = statement._compile(engine.dialect, None)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled.sql}", statement._parameters(compiled, params)
        ).all()
    return "\n".join(str(r[-1]) for r in rows)


def test_the_balance_reads_the_lots_index_alone(engine: sa.Engine) -> None:
    found = plan(engine, ledger._BALANCE, {"member": 1, "now": NOW})
    assert "USING COVERING INDEX ix_points_entries_lots" in found, found


def test_the_tier_window_reads_its_indexes_alone(engine: sa.Engine) -> None:
    params = {"member": 1, "since": NOW - timedelta(days=365), "now": NOW}
    found = plan(engine, tiers._WINDOW_ONE, params)
    assert "USING COVERING INDEX ix_orders_member_ordered" in found, found
    assert "USING COVERING INDEX ix_points_entries_member_created" in found, found
