"""The Spark backend for record linkage: a Spark session (local[N] or a cluster master) with
Splink's UDF jar, for member counts one machine cannot hold. Needs `pip install omo[spark]` and
a Java 17+ runtime."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omo.shared.errors import ValidationFailed
from omo.shared.spark import spark_session


@contextmanager
def spark_api(master: str) -> Iterator[tuple[Any, Any]]:
    try:
        from splink import SparkAPI
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ValidationFailed(f"the spark engine needs splink: {exc}", field="engine") from exc
    spark = spark_session(master, app="omo-resolve", config={"spark.default.parallelism": "8"})
    checkpoints = Path(tempfile.mkdtemp(prefix="omo-splink-"))
    spark.sparkContext.setCheckpointDir(str(checkpoints))
    try:
        yield SparkAPI(spark_session=spark, break_lineage_method="parquet"), spark  # type: ignore[no-untyped-call]
    finally:
        spark.stop()
        shutil.rmtree(checkpoints, ignore_errors=True)
