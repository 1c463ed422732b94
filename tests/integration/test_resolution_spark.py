"""The same resolution model on Splink's Spark backend (local mode): same pairs found as on
DuckDB. Needs the optional extra (pip install 'omo[spark]') and a Java runtime; it takes minutes
(a JVM, and Spark's per-query overhead), so CI, which installs only '.[dev]', skips it."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic import command

from omo.cli import alembic_config
from omo.db import UnitOfWork, make_engine
from omo.demo.load import DemoSpec, load_demo
from omo.identity import linkage
from omo.identity.snapshot import member_records
from omo.settings import Settings

pytest.importorskip("pyspark", reason="the spark engine is an optional extra: omo[spark]")
if shutil.which("java") is None:
    pytest.skip("the spark engine needs a Java runtime", allow_module_level=True)


@contextmanager
def timer(_step: str) -> Any:
    yield


def test_spark_and_duckdb_find_the_same_pairs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'world.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    load_demo(engine, DemoSpec(people=400, seed=9, months=24, until=date(2026, 11, 1)), tmp_path)
    records = member_records(UnitOfWork(engine))
    training = linkage.Training(u_max_pairs=2e5)
    found = {}
    for name in ("duckdb", "spark"):
        scored = linkage.score(
            records,
            engine=name,
            threshold=0.9,
            training=training,
            timer=timer,  # type: ignore[arg-type]
        )
        found[name] = {(p["a"], p["b"]) for p in scored.pairs}
    assert found["duckdb"]
    overlap = len(found["duckdb"] & found["spark"]) / len(found["duckdb"] | found["spark"])
    assert overlap >= 0.95, found
