"""Seconds of `omo resolve`'s merges alone, replayed from one saved plan on fresh copies of a world.

A whole resolve at 1M people takes minutes before its first merge; this times the merge step by
itself, so that changes to it can be compared run against run:
1. plan (once per world, kept beside it): `omo resolve` on a copy of the world with the merge
   step replaced by saving its input (the clusters `decide` chose) to a pickle;
2. replay: a fresh process copies the world and applies the plan's merges through the same
   function `omo resolve` calls, --batch clusters per write transaction, timed.
Repeat the replays (--repeat) to see how noisy the machine is before believing a difference.

    python bench/merges.py --people 100000 [--batch 200 --batch 1000] [--repeat 2]
                           [--workdir var/bench]
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

from worlds import ROOT, peak_mb, phase, world  # bench/ is the script's directory, so on sys.path


def make_plan(src: str, plan: str) -> dict[str, Any]:
    from omo.db import UnitOfWork, make_engine
    from omo.identity import resolution
    from omo.settings import Settings

    def save(_uow: Any, run_id: int, clusters: list[Any], actor: str, _size: int) -> int:
        Path(plan).write_bytes(pickle.dumps((run_id, clusters, actor)))
        return 0

    copy = f"{plan}.sqlite"
    shutil.copy(src, copy)
    resolution._apply_merges = save  # type: ignore[assignment]  # keep the plan, merge nothing
    try:
        engine = make_engine(Settings(database_url=f"sqlite:///{copy}"))
        run = resolution.resolve(UnitOfWork(engine), resolution.ResolveOptions())
        engine.dispose()
    finally:
        Path(copy).unlink()
    return {"timings": run.timings}


def replay(src: str, plan: str, batch: str) -> dict[str, Any]:
    from omo.db import UnitOfWork, make_engine
    from omo.identity import resolution
    from omo.settings import Settings

    copy = f"{plan}.replay.sqlite"
    shutil.copy(src, copy)
    run_id, clusters, actor = pickle.loads(Path(plan).read_bytes())
    engine = make_engine(Settings(database_url=f"sqlite:///{copy}"))
    try:
        started = time.perf_counter()
        merged = resolution._apply_merges(UnitOfWork(engine), run_id, clusters, actor, int(batch))
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
        Path(copy).unlink()
    return {"seconds": seconds, "merges": merged, "peak_mb": peak_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--people", type=int, action="append", help="world sizes (default 100000)")
    ap.add_argument("--batch", type=int, action="append", help="clusters per transaction")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.phase:
        run = make_plan if opts.phase == "plan" else replay
        print(json.dumps(run(*opts.args)))
        return
    opts.workdir.mkdir(parents=True, exist_ok=True)
    for people in opts.people or [100_000]:
        db, _truth = world(opts.workdir, people)
        plan = opts.workdir / f"merge-plan-{people}.pickle"
        if not plan.exists() or plan.stat().st_mtime < db.stat().st_mtime:
            made = phase(__file__, "plan", str(db), str(plan))
            print(f"{people:,} people: plan made, resolve steps {made['timings']}")
        for batch in opts.batch or [200]:
            for _ in range(opts.repeat):
                out = phase(__file__, "replay", str(db), str(plan), str(batch))
                print(f"{people:,} people, {batch} clusters per transaction: "
                      f"{out['merges']:,} merges in {out['seconds']:.1f} s "
                      f"({out['seconds'] / max(out['merges'], 1) * 1000:.2f} ms each)")  # fmt: skip


if __name__ == "__main__":
    main()
