"""One way to start Spark for every area (`omo resolve`, `omo refresh`).

A Python process launches one JVM, with the classpath of the first Spark session it builds;
later sessions cannot add jars. So every session carries Splink's UDF jar (JARO_WINKLER and
friends): whichever area starts Spark first, the other still finds what it needs. Needs
`pip install 'omo[spark]'` and a Java 17+ runtime."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omo.shared.errors import ValidationFailed


def spark_session(master: str, *, app: str, config: Mapping[str, str] | None = None) -> Any:
    """A Spark session on `master` (local[N] or a cluster URL); `config` adds settings."""
    try:
        from pyspark.sql import SparkSession
        from splink.backends.spark import similarity_jar_location
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ValidationFailed(
            f"the spark engine needs pyspark (pip install 'omo[spark]'): {exc}", field="engine"
        ) from exc
    builder = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
    )
    for key, value in (config or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
