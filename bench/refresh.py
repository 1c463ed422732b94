"""Seconds of `omo refresh` on a demo world against a hand-written DuckDB query, in one run.

For each world (a demo SQLite file, see worlds.py):
1. baseline: a fresh process reads the same snapshot (omo's own reader) and runs a hand-written
   DuckDB SQL group-by for R, F and M (purchase days, spend, last day; quintile scores by
   cume_dist) — the least an RFM step can cost on this engine;
2. omo: a fresh process runs the whole `omo refresh` on DuckDB (snapshot, figures = RFM with
   segments, grades, lifecycle and tags, BG/NBD + Gamma-Gamma predictions, write-back);
3. spark (with --spark, first world): the same refresh on Spark local[2], its segments compared
   member by member with DuckDB's.
The figures step of omo against the baseline's query is the ratio that compares across
machines (goal ≤ 3×); as one run of each is at the mercy of a noisy moment, a last phase also
runs both on one engine three times each and compares the best. The whole refresh has a goal
of 60 s at 1,000,000 people.

    python bench/refresh.py --people 100000 [--people 1000000] [--spark] [--workdir var/bench]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import sqlalchemy as sa
from worlds import (  # bench/ is the script's directory, so on sys.path
    ROOT,
    UNTIL,
    peak_mb,
    phase,
    warm,
    world,
)

AS_OF = datetime.fromisoformat(f"{UNTIL}T00:00:00+00:00")
DAY, OFFSET = 86_400, 8 * 3600

BASELINE_SQL = """
WITH daily AS (
    SELECT member_id, (ordered_s + {offset}) // {day} AS day, sum(net_cents) AS spend
    FROM orders
    WHERE ordered_s <= {as_of} AND member_id IN (SELECT member_id FROM members)
    GROUP BY ALL
), buyers AS (
    SELECT member_id, count(*) AS days, sum(spend) AS spend, max(day) AS last_day
    FROM daily GROUP BY member_id
)
SELECT member_id, days, spend, last_day,
       ceil(cume_dist() OVER (ORDER BY last_day DESC) * 5 - 1e-9) AS r,
       ceil(cume_dist() OVER (ORDER BY days) * 5 - 1e-9) AS f,
       ceil(cume_dist() OVER (ORDER BY spend) * 5 - 1e-9) AS m
FROM buyers
"""


def run_phase(name: str, db: str, out: str) -> dict[str, Any]:
    from omo.analytics.snapshot import read_snapshot

    url = sa.make_url(db)
    if name == "ratio":
        return _ratio(url)
    if name == "baseline":
        import duckdb

        started = time.perf_counter()
        snapshot = read_snapshot(url, as_of=AS_OF)
        read = time.perf_counter() - started
        con = duckdb.connect()
        con.register("members", snapshot.members)
        con.register("orders", snapshot.orders)
        started = time.perf_counter()
        sql = BASELINE_SQL.format(offset=OFFSET, day=DAY, as_of=int(AS_OF.timestamp()))
        table = con.sql(sql).to_arrow_table()
        query = time.perf_counter() - started
        return {"snapshot": read, "query": query, "buyers": table.num_rows, "peak_mb": peak_mb()}
    from omo.analytics.refresh import RefreshOptions, refresh
    from omo.db import UnitOfWork, make_engine
    from omo.settings import Settings

    engine = make_engine(Settings(database_url=db))
    started = time.perf_counter()
    run = refresh(UnitOfWork(engine), RefreshOptions(engine=name, as_of=AS_OF))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT member_id, segment FROM member_scores ORDER BY 1"))
        ids, segments = zip(*rows, strict=True) if run.members else ((), ())
    import pyarrow as pa

    pq.write_table(pa.table({"member_id": list(ids), "segment": list(segments)}), out)
    return {"seconds": seconds, "timings": run.timings, "members": run.members,
            "buyers": run.buyers, "segments": run.segments, "peak_mb": peak_mb()}  # fmt: skip


def _ratio(url: Any) -> dict[str, Any]:
    """The figures expression and the hand-written query over one snapshot on one engine,
    alternately, three times each: best of three, so one slow moment does not decide."""
    from omo.analytics.engine import runner
    from omo.analytics.rfm import Policy, member_figures
    from omo.analytics.snapshot import read_snapshot

    snapshot = read_snapshot(url, as_of=AS_OF)
    as_of = int(AS_OF.timestamp())
    sql = BASELINE_SQL.format(offset=OFFSET, day=DAY, as_of=as_of)
    best = {"sql": float("inf"), "figures": float("inf")}
    with runner("duckdb") as engine:
        members = engine.table(snapshot.members, "members")
        orders = engine.table(snapshot.orders, "orders")
        for _ in range(3):
            started = time.perf_counter()
            engine.backend.con.sql(sql).to_arrow_table()
            best["sql"] = min(best["sql"], time.perf_counter() - started)
            started = time.perf_counter()
            engine.to_arrow(member_figures(members, orders, as_of_s=as_of, policy=Policy()))
            best["figures"] = min(best["figures"], time.perf_counter() - started)
    return best


def same_segments(a: Path, b: Path) -> int:
    """Members whose segment differs between two runs."""
    left, right = pq.read_table(a).to_pydict(), pq.read_table(b).to_pydict()
    if left["member_id"] != right["member_id"]:
        return max(len(left["member_id"]), len(right["member_id"]))
    return sum(x != y for x, y in zip(left["segment"], right["segment"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--people", type=int, action="append", help="world sizes (default 100000)")
    ap.add_argument("--spark", action="store_true", help="also on Spark local[2] (first world)")
    ap.add_argument(
        "--purchases-per-year", type=float, help="omo demo's rate for the worlds (default ≈ 2.5)"
    )
    ap.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.phase:
        print(json.dumps(run_phase(opts.phase, *opts.args)))
        return
    opts.workdir.mkdir(parents=True, exist_ok=True)
    for n, people in enumerate(opts.people or [100_000]):
        db, _ = world(opts.workdir, people, opts.purchases_per_year)
        url = f"sqlite:///{db}"
        duck_out, spark_out = (
            opts.workdir / "segments-duckdb.parquet",
            opts.workdir / "segments-spark.parquet",
        )
        warm(db)
        base = phase(__file__, "baseline", url, "")
        omo = phase(__file__, "duckdb", url, str(duck_out))
        steps = omo["timings"]
        print(f"\n{people:,} people: {omo['members']:,} members, {omo['buyers']:,} buyers "
              f"(DuckDB, this machine, same run)")  # fmt: skip
        print(
            f"  baseline: snapshot {base['snapshot']:6.1f} s, hand-written RFM SQL "
            f"{base['query']:6.2f} s ({base['buyers']:,} buyers)  peak {base['peak_mb']:,.0f} MB"
        )
        print(f"  omo refresh (whole run)  {omo['seconds']:6.1f} s  peak {omo['peak_mb']:,.0f} MB"
              f"  steps {steps}")  # fmt: skip
        print(
            f"    figures step ×{steps['figures'] / base['query']:.2f} of the hand-written SQL; "
            f"snapshot ×{steps['snapshot'] / base['snapshot']:.2f} of the baseline's read"
        )
        print(f"    segments {omo['segments']}")
        ratio = phase(__file__, "ratio", url, "")
        print(f"  figures vs hand-written SQL on one engine, best of 3 each: "
              f"{ratio['figures']:.2f} s vs {ratio['sql']:.2f} s = "
              f"×{ratio['figures'] / ratio['sql']:.2f}")  # fmt: skip
        if opts.spark and n == 0:
            spark = phase(__file__, "spark", url, str(spark_out))
            differ = same_segments(duck_out, spark_out)
            print(f"  omo refresh on Spark local[2]  {spark['seconds']:6.1f} s  "
                  f"×{spark['seconds'] / omo['seconds']:.2f} of DuckDB; steps {spark['timings']}; "
                  f"{differ} members in a different segment")  # fmt: skip


if __name__ == "__main__":
    main()
