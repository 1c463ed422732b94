"""Where the Ibis expressions run: DuckDB in process (default) or Spark (local[N] or a cluster).

Both take the snapshot's Arrow tables as in-memory tables and hand results back as Arrow, so the
refresh above does not know which engine ran it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from typing import Any, Literal

import ibis
import pyarrow as pa

from omo.shared.errors import ValidationFailed
from omo.shared.spark import spark_session

Engine = Literal["duckdb", "spark"]


class Runner:
    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def table(self, data: pa.Table, name: str) -> Any:
        """An engine table holding `data`."""
        if self.backend.name == "duckdb":
            self.backend.con.register(name, data)
            return self.backend.table(name)
        return ibis.memtable(data)

    def to_arrow(self, expr: Any) -> pa.Table:
        return self.backend.to_pyarrow(expr)

    def hold(self, expr: Any, what: str, *, small: bool) -> Any:
        """`expr` computed once and kept, for an intermediate result read several times (as an
        expression, each use would compute it again). DuckDB keeps it as a temporary table of
        its own. Spark keeps a `small` one as a table of the driver's memory; a big one stays
        an expression, as shipping millions of rows to the driver and back costs more than
        computing them again."""
        name = f"held_{what}_{next(_held)}"
        if self.backend.name == "duckdb":
            return self.backend.create_table(name, expr, temp=True)
        return ibis.memtable(self.to_arrow(expr)) if small else expr


_held = count()


@contextmanager
def runner(engine: Engine, *, spark_master: str = "local[2]") -> Iterator[Runner]:
    """A connected engine, closed afterwards."""
    if engine == "duckdb":
        backend = ibis.duckdb.connect()
        try:
            yield Runner(backend)
        finally:
            backend.disconnect()
        return
    if engine != "spark":
        raise ValidationFailed(f"{engine!r} is not duckdb or spark", field="engine")
    with tempfile.TemporaryDirectory(prefix="omo-spark-") as warehouse:
        settings = {"spark.sql.session.timeZone": "UTC", "spark.sql.warehouse.dir": warehouse}
        spark = spark_session(spark_master, app="omo-refresh", config=settings)
        try:
            yield Runner(ibis.pyspark.connect(spark))
        finally:
            spark.stop()
