"""`omo refresh`: every member's figures, RFM scores, segment, grade, lifecycle, tags and CLV.

1. read a consistent snapshot of members and purchases (analytics/snapshot.py, one read
   transaction; the request path keeps going);
2. compute the figures with the Ibis expressions of analytics/rfm.py on DuckDB or Spark;
3. fit BG/NBD (or Pareto/NBD) and Gamma-Gamma on them and predict (analytics/predictions.py);
4. mine the basket rules, per SKU and per category (analytics/basket.py), new products'
   penetration (analytics/penetration.py) and the monthly cohorts (analytics/cohorts.py) on the
   same engine;
5. replace member_scores, basket_rules, new_products and cohort_retention in one write
   transaction and record the run (policy, models, segment counts, timings); a failure is
   recorded on the run and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import URL

from omo.analytics.arrowdb import isolated, transaction
from omo.analytics.basket import BasketPolicy, Level, mine
from omo.analytics.behaviour import aligned, event_figures
from omo.analytics.cohorts import cohort_counts, month_of, retention_table
from omo.analytics.engine import Engine, runner
from omo.analytics.models import AnalyticsRun, BasketRule, CohortMonth, MemberScore, NewProduct
from omo.analytics.penetration import new_products, penetration_table
from omo.analytics.periods import EARLIEST, LATEST
from omo.analytics.predictions import Model, predict
from omo.analytics.rfm import Policy, member_figures
from omo.analytics.sales import sold_lines
from omo.analytics.schemas import RunRead
from omo.analytics.service import get_run
from omo.analytics.snapshot import read_snapshot
from omo.analytics.tags import categories_bought, tag_lists
from omo.db import UnitOfWork
from omo.shared import clock
from omo.shared.errors import ValidationFailed
from omo.shared.sqltypes import Money

Progress = Callable[[str], None]
STEPS = (
    "snapshot", "engine", "figures", "predictions", "basket", "behaviour", "cohorts", "write",
)  # fmt: skip


@dataclass(frozen=True)
class RefreshOptions:
    engine: Engine = "duckdb"
    as_of: datetime | None = None  # default: now; earlier dates replay the past (holdout tests)
    policy: Policy = field(default_factory=Policy)
    basket: BasketPolicy = field(default_factory=BasketPolicy)
    new_product_days: int = 180  # a SKU first bought this recently is a new product
    model: Model = "bgnbd"  # purchases and P(alive): BG/NBD, or Pareto/NBD
    spark_master: str = "local[2]"


def refresh(
    uow: UnitOfWork, options: RefreshOptions | None = None, *, progress: Progress | None = None
) -> RunRead:
    """Recompute every member's scores and predictions; returns the recorded run."""
    options = options or RefreshOptions()
    say = progress or (lambda _step: None)
    started = clock.now()
    as_of = clock.as_utc(options.as_of) if options.as_of else started
    if not EARLIEST <= as_of <= LATEST:
        raise ValidationFailed(
            f"as_of must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}", field="as_of"
        )
    with uow.write() as session:
        run = AnalyticsRun(
            engine=options.engine, status="running", as_of=as_of, started_at=started,
            policy=_policy_record(options.policy),
        )  # fmt: skip
        session.add(run)
        session.flush()
        run_id = run.id
    timings: dict[str, float] = {}
    try:
        with ExitStack() as stack:
            with _timed(timings, "snapshot", say):
                snapshot = read_snapshot(uow.engine.url, as_of=as_of)
            with _timed(timings, "engine", say):
                engine = stack.enter_context(
                    runner(options.engine, spark_master=options.spark_master)
                )
            as_of_s = int(as_of.timestamp())
            with _timed(timings, "figures", say):
                members = engine.table(snapshot.members, "members")
                orders = engine.table(snapshot.orders, "orders")
                expr = member_figures(members, orders, as_of_s=as_of_s, policy=options.policy)
                figures = engine.to_arrow(expr)
            with _timed(timings, "predictions", say):
                columns, models = _predict(figures, options.model)
            with _timed(timings, "basket", say):
                bought = orders.filter(orders.ordered_s <= as_of_s)
                lines = engine.table(snapshot.lines, "lines")
                sold = sold_lines(engine, lines, bought)
                names: dict[Level, pa.Array] = {
                    "sku": snapshot.skus, "category": snapshot.categories,
                }  # fmt: skip
                rules = mine(engine, sold, options.basket, names)
                found = new_products(sold, bought, as_of_s=as_of_s, days=options.new_product_days)
                launched = penetration_table(
                    engine.to_arrow(found), utc_offset_s=options.policy.utc_offset_s,
                    skus=snapshot.skus,
                )  # fmt: skip
                categories = engine.to_arrow(categories_bought(sold))
            with _timed(timings, "behaviour", say):
                events = engine.table(snapshot.events, "events")
                behaviour = engine.to_arrow(event_figures(events, as_of_s=as_of_s))
            with _timed(timings, "cohorts", say):
                offset = options.policy.utc_offset_s
                sizes, active = cohort_counts(members, orders, as_of_s=as_of_s, utc_offset_s=offset)
                cohorts = retention_table(
                    engine.to_arrow(sizes), engine.to_arrow(active),
                    last_month=month_of(as_of_s, utc_offset_s=offset),
                )  # fmt: skip
        say("write")
        derived = Derived(
            figures, columns, models, rules, cohorts, launched, categories, snapshot.categories,
            behaviour,
        )  # fmt: skip
        _write(uow, run_id, derived, timings)
    except Exception as exc:
        with uow.write() as session:
            failed = session.get(AnalyticsRun, run_id)
            assert failed is not None
            failed.status = "failed"
            failed.finished_at = clock.now()
            failed.timings = timings
            failed.error = f"{type(exc).__name__}: {exc}"[:500]
        raise
    return get_run(uow, run_id)


def _predict(
    figures: pa.Table, model: Model
) -> tuple[dict[str, np.ndarray[Any, Any]], dict[str, Any]]:
    n = figures.num_rows
    buyer = np.asarray(figures["purchase_days"].to_numpy(zero_copy_only=False)) > 0
    out: dict[str, np.ndarray[Any, Any]] = {
        "p_alive": np.full(n, np.nan),
        "purchases_90d": np.full(n, np.nan),
        "purchases_365d": np.full(n, np.nan),
        "order_value_cents": np.full(n, np.nan),
        "clv_cents": np.full(n, np.nan),
        "clv_tier": np.full(n, None, dtype=object),
        "at_risk": np.zeros(n, dtype=bool),
    }

    def col(name: str) -> np.ndarray[Any, Any]:
        return np.asarray(figures[name].to_numpy(zero_copy_only=False))[buyer]

    found = predict(
        col("purchase_days"), col("first_day"), col("last_day"), col("tenure_days"),
        col("spend_cents"), col("first_day_cents"), col("top_share"), model=model,
    )  # fmt: skip
    if found is None:
        return out, {"error": "no member has bought anything yet"}
    for name in out:
        out[name][buyer] = getattr(found, name)
    return out, found.models


@dataclass(frozen=True)
class Derived:
    """What a run computed, before it is written."""

    figures: pa.Table
    predicted: dict[str, np.ndarray[Any, Any]]
    models: dict[str, Any]
    rules: pa.Table
    cohorts: pa.Table
    launched: pa.Table
    categories: pa.Table  # member_id, codes of the categories bought
    category_names: pa.Array  # the category of each code
    behaviour: pa.Table  # member_id, views_30d, carts_30d, ad_clicks_30d, nps_last


def _write(uow: UnitOfWork, run_id: int, derived: Derived, timings: dict[str, float]) -> None:
    started = time.perf_counter()
    # in key order, so the database builds member_scores' primary key in one sweep, not by
    # random inserts (sorted here, not in the engine: it is the write's need, not the figures')
    order = pc.sort_indices(derived.figures["member_id"])
    figures = derived.figures.take(order)
    index = order.to_numpy()
    predicted = {name: values[index] for name, values in derived.predicted.items()}
    extra = {
        "tags": tag_lists(figures, derived.categories, derived.category_names),
        **aligned(figures["member_id"], derived.behaviour),
    }
    scores = _scores_table(run_id, figures, predicted, extra)
    tables = {
        MemberScore.__tablename__: scores,
        BasketRule.__tablename__: _with_run(derived.rules, run_id, BasketRule),
        CohortMonth.__tablename__: _with_run(derived.cohorts, run_id, CohortMonth),
        NewProduct.__tablename__: _with_run(derived.launched, run_id, NewProduct),
    }
    segments = pc.value_counts(figures["segment"]).to_pylist()
    counts = {s["values"]: s["counts"] for s in segments}
    with uow.write() as session:
        run = session.get(AnalyticsRun, run_id)
        assert run is not None
        run.members = figures.num_rows
        run.buyers = figures.num_rows - counts.get("prospect", 0)
        run.models = derived.models
        run.segments = dict(sorted(counts.items()))
    isolated(uow.engine.url, _replace, run_id, tables)
    with uow.write() as session:
        run = session.get(AnalyticsRun, run_id)
        assert run is not None
        run.finished_at = clock.now()
        run.timings = {**timings, "write": round(time.perf_counter() - started, 3)}


def _replace(url: URL, run_id: int, tables: dict[str, pa.Table]) -> None:
    # the derived tables and the run's "done" switch together: a reader sees the old run or
    # the new one
    with transaction(url, write=True) as connection:
        for table, rows in tables.items():
            connection.execute(f"DELETE FROM {table}")  # noqa: S608
            with connection.indexes_dropped(table):
                connection.ingest(table, rows)
        connection.execute("UPDATE analytics_runs SET status = 'done' WHERE id = ?", (run_id,))


def _scores_table(
    run_id: int,
    figures: pa.Table,
    predicted: dict[str, np.ndarray[Any, Any]],
    extra: dict[str, pa.Array],
) -> pa.Table:
    """member_scores rows as Arrow; money as integer cents, as the Money type stores it."""
    n = figures.num_rows
    columns: dict[str, Any] = {
        "member_id": figures["member_id"],
        "run_id": pa.array(np.full(n, run_id, dtype=np.int64)),
        **{name: figures[source] for name, source in _FIGURES.items()},
        **extra,
        "p_alive": _nullable(predicted["p_alive"]),
        "purchases_90d": _nullable(predicted["purchases_90d"]),
        "purchases_365d": _nullable(predicted["purchases_365d"]),
        "expected_order_value": _nullable(np.round(predicted["order_value_cents"]), pa.int64()),
        "clv": _nullable(np.round(predicted["clv_cents"]), pa.int64()),
        "clv_tier": pa.array(predicted["clv_tier"], type=pa.string()),
        "at_risk": pa.array(predicted["at_risk"]),
    }
    return pa.table(columns).select(_SCORES_SCHEMA.names).cast(_SCORES_SCHEMA)


def _arrow_type(column: Any) -> pa.DataType:
    # PostgreSQL's binary COPY wants each value in its column's exact width
    kind = column.type
    if isinstance(kind, Money | sa.BigInteger):
        return pa.int64()
    if isinstance(kind, sa.SmallInteger):
        return pa.int16()
    if isinstance(kind, sa.Integer):
        return pa.int32()
    if isinstance(kind, sa.Float):
        return pa.float64()
    if isinstance(kind, sa.Boolean):
        return pa.bool_()
    return pa.string()  # String, JSON (the text of it)


def _schema(model: Any) -> pa.Schema:
    return pa.schema([(c.name, _arrow_type(c), c.nullable) for c in model.__table__.columns])


def _with_run(table: pa.Table, run_id: int, model: Any) -> pa.Table:
    """`table` with the run's id, in the model's columns and exact widths."""
    schema = _schema(model)
    table = table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.int64()))
    return table.select(schema.names).cast(schema)


_SCORES_SCHEMA = _schema(MemberScore)

# member_scores column -> figures column
_FIGURES = {
    "orders": "orders", "purchase_days": "purchase_days", "spend": "spend_cents",
    "recency_days": "recency_days", "tenure_days": "tenure_days",
    "online_orders": "online_orders", "offline_orders": "offline_orders",
    "discount_share": "discount_share", "cycle_days": "cycle_days", "r": "r", "f": "f",
    "m": "m", "segment": "segment",
    "grade": "grade", "lifecycle": "lifecycle",
}  # fmt: skip


def _nullable(values: np.ndarray[Any, Any], type_: pa.DataType | None = None) -> pa.Array:
    """NaN becomes NULL."""
    missing = ~np.isfinite(values)
    if type_ is not None:
        values = np.where(missing, 0, values).astype(np.int64)
    return pa.array(values, mask=missing, type=type_)


def _policy_record(policy: Policy) -> dict[str, Any]:
    record = asdict(policy)
    record.pop("compiled", None)
    record["segments"] = [{"name": s.name, "rule": s.rule} for s in policy.segments]
    return record


@contextmanager
def _timed(timings: dict[str, float], step: str, say: Progress) -> Iterator[None]:
    say(step)
    started = time.perf_counter()
    yield
    timings[step] = round(time.perf_counter() - started, 3)
