"""The same refresh on Spark (local mode) as on DuckDB: every member's scores, segment, grade,
stage, tags, predictions, basket rules, new products and cohorts identical. Needs the optional extra (pip install
'omo[spark]') and a Java runtime; CI, which installs only '.[dev]', skips it."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from omo.analytics.refresh import RefreshOptions, refresh
from omo.cli import alembic_config
from omo.db import UnitOfWork, make_engine
from omo.demo.load import DemoSpec, load_demo
from omo.settings import Settings

pytest.importorskip("pyspark", reason="the spark engine is an optional extra: omo[spark]")
if shutil.which("java") is None:
    pytest.skip("the spark engine needs a Java runtime", allow_module_level=True)

AS_OF = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
COLUMNS = (
    "member_id, recency_days, orders, spend, r, f, m, segment, grade, lifecycle, tags, p_alive, "
    "purchases_90d, clv, clv_tier, at_risk, views_30d, carts_30d, ad_clicks_30d, nps_last"
)


def scores(engine: sa.Engine, run_id: int) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {COLUMNS} FROM member_scores WHERE run_id = :r ORDER BY member_id"),
            {"r": run_id},
        )
        return [tuple(row) for row in rows]


def rules(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """Basket rules, new products and cohorts of the last run."""
    queries = (
        "SELECT level, antecedent, consequent, orders, support, confidence, lift "
        "FROM basket_rules ORDER BY 1, 2, 3",
        "SELECT sku, launched, buyers, repeat_buyers, window_buyers, penetration, repeat_rate "
        "FROM new_products ORDER BY 1",
        "SELECT cohort, months_since, size, active, 0, 0, 0 FROM cohort_retention ORDER BY 1, 2",
    )
    found = []
    with engine.connect() as conn:
        for query in queries:
            rows = conn.execute(sa.text(query))
            found += [(*row[:4], *(round(v, 12) for v in row[4:])) for row in rows]
    return found


def test_spark_and_duckdb_score_every_member_alike(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'world.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    load_demo(engine, DemoSpec(people=600, seed=5, months=24, until=date(2026, 11, 1)), tmp_path)
    uow = UnitOfWork(engine)
    on_duckdb = refresh(uow, RefreshOptions(engine="duckdb", as_of=AS_OF, new_product_days=800))
    duck, duck_rules = scores(engine, on_duckdb.id), rules(engine)
    on_spark = refresh(uow, RefreshOptions(engine="spark", as_of=AS_OF, new_product_days=800))
    spark, spark_rules = scores(engine, on_spark.id), rules(engine)
    assert len(duck) == len(spark) == on_duckdb.members > 600
    assert duck == spark
    assert on_spark.segments == on_duckdb.segments
    # every SKU counts as new over 800 days, so all of them are compared
    assert duck_rules == spark_rules and len(duck_rules) > 100
    engine.dispose()
