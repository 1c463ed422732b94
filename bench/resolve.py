"""Seconds of `omo resolve` on a demo world against bare Splink on the same records, in one run.

For each world (a demo SQLite file, built with `omo demo --people N --no-serve --truth DIR` when
it is not there yet):
1. baseline: the member records are read once and written to Parquet; a fresh process loads
   them and runs Splink alone on them (the same model: train + predict);
2. omo: a fresh process runs the whole `omo resolve` (snapshot, train, predict, decisions,
   merges, review queue, run record) on a copy of the world;
3. spark (optional): Splink's Spark backend in local mode on the same records.
Each phase runs in its own process, so its peak memory is its own. The ratio omo/baseline is
the figure that compares across machines; with --truth, precision and recall come too.

--repeat N runs the pair N times, bare Splink and omo in turn on a fresh copy each time, and
prints every pair and the ratio of the medians: these machines' speed drifts by 15 % within
minutes, so one pair's ratio moves with whichever phase drew the slower minutes.

    python bench/resolve.py --people 100000 [--people 1000000] [--repeat N] [--spark]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from worlds import ROOT, peak_mb, phase, world  # bench/ is the script's directory, so on sys.path


def run_phase(name: str, db: str, records: str) -> dict[str, Any]:
    from omo.db import UnitOfWork, make_engine
    from omo.identity import linkage
    from omo.identity.resolution import ResolveOptions, resolve
    from omo.settings import Settings

    timings: dict[str, float] = {}

    @contextmanager
    def timer(step: str) -> Any:
        t0 = time.perf_counter()
        yield
        timings[step] = round(time.perf_counter() - t0, 2)

    if name in ("splink", "spark"):
        table = pq.read_table(records)
        started = time.perf_counter()
        scored = linkage.score(
            table, engine="duckdb" if name == "splink" else "spark", threshold=0.5,
            training=linkage.Training(), timer=timer,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "pairs": len(scored.pairs), "timings": timings,
                "peak_mb": peak_mb()}  # fmt: skip
    engine = make_engine(Settings(database_url=db))
    started = time.perf_counter()
    run = resolve(UnitOfWork(engine), ResolveOptions())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "pairs": run.pairs_scored, "merges": run.merges,
            "reviews": run.reviews_queued, "timings": run.timings,
            "peak_mb": peak_mb()}  # fmt: skip


def export_records(db: Path, out: Path) -> int:
    from omo.db import UnitOfWork, make_engine
    from omo.identity.snapshot import member_records
    from omo.settings import Settings

    engine = make_engine(Settings(database_url=f"sqlite:///{db}"))
    table: pa.Table = member_records(UnitOfWork(engine))
    pq.write_table(table, out)
    engine.dispose()
    return int(table.num_rows)


def accuracy(db: Path, truth: Path) -> str:
    records = pq.read_table(truth / "records.parquet", columns=["member_id", "person_id"])
    person = dict(
        zip(records["member_id"].to_pylist(), records["person_id"].to_pylist(), strict=True)
    )
    from omo.testing.resolution import outcome, pairs_of, scores

    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        left = outcome(conn)
    truth_pairs = pairs_of(person)
    precision, recall, _ = scores(pairs_of({m: left.merged[m] for m in person}), truth_pairs)
    _, with_review, _ = scores(pairs_of({m: left.queued[m] for m in person}), truth_pairs)
    return (
        f"precision at auto-merge {precision:.4f}, recall merged {recall:.4f}, "
        f"with review {with_review:.4f} ({len(truth_pairs):,} true pairs)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--people", type=int, action="append", help="world sizes (default 100000)")
    ap.add_argument(
        "--spark", action="store_true", help="also Splink on Spark local[2] (first world)"
    )
    ap.add_argument("--repeat", type=int, default=1, help="pairs of runs, in turn (default 1)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.phase:
        print(json.dumps(run_phase(opts.phase, *opts.args)))
        return
    opts.workdir.mkdir(parents=True, exist_ok=True)
    for n, people in enumerate(opts.people or [100_000]):
        db, truth = world(opts.workdir, people)
        records = opts.workdir / f"records-{people}.parquet"
        rows = export_records(db, records)
        copy = opts.workdir / f"resolve-{people}.sqlite"
        pairs = []
        print(f"\n{people:,} people, {rows:,} member records (DuckDB, this machine, same run)")
        for _ in range(max(1, opts.repeat)):
            shutil.copy(db, copy)
            base = phase(__file__, "splink", "", str(records))
            omo = phase(__file__, "omo", f"sqlite:///{copy}", "")
            pairs.append((base["seconds"], omo["seconds"]))
            print(f"  bare Splink (train + predict)  {base['seconds']:8.1f} s  "
                  f"peak {base['peak_mb']:,.0f} MB  {base['pairs']:,} pairs ≥ 0.5")  # fmt: skip
            print(f"  omo resolve (whole run)        {omo['seconds']:8.1f} s  "
                  f"peak {omo['peak_mb']:,.0f} MB  ×{omo['seconds'] / base['seconds']:.2f} "
                  "of bare Splink")  # fmt: skip
            print(f"    steps {omo['timings']}; {omo['merges']:,} merged, "
                  f"{omo['reviews']:,} queued")  # fmt: skip
        if len(pairs) > 1:
            bare_s = statistics.median(b for b, _ in pairs)
            omo_s = statistics.median(o for _, o in pairs)
            print(f"  medians of {len(pairs)}: bare {bare_s:.1f} s, omo {omo_s:.1f} s, "
                  f"×{omo_s / bare_s:.2f}")  # fmt: skip
        if truth.exists():
            print(f"    {accuracy(copy, truth)}")
        if opts.spark and n == 0:
            spark = phase(__file__, "spark", "", str(records))
            print(f"  Splink on Spark local[2]       {spark['seconds']:8.1f} s  "
                  f"×{spark['seconds'] / base['seconds']:.2f} of DuckDB; {spark['pairs']:,} pairs; "
                  f"steps {spark['timings']}")  # fmt: skip
        copy.unlink()


if __name__ == "__main__":
    main()
