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


@contextmanager
def spark_api(master: str) -> Iterator[tuple[Any, Any]]:
    try:
        from pyspark.sql import SparkSession
        from splink import SparkAPI
        from splink.backends.spark import similarity_jar_location
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ValidationFailed(
            f"the spark engine needs pyspark (pip install 'omo[spark]'): {exc}", field="engine"
        ) from exc
    spark = (
        SparkSession.builder.master(master)
        .appName("omo-resolve")
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.default.parallelism", "8")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    checkpoints = Path(tempfile.mkdtemp(prefix="omo-splink-"))
    spark.sparkContext.setCheckpointDir(str(checkpoints))
    try:
        yield SparkAPI(spark_session=spark, break_lineage_method="parquet"), spark  # type: ignore[no-untyped-call]
    finally:
        spark.stop()
        shutil.rmtree(checkpoints, ignore_errors=True)
