"""Seconds of the live period reports (KPIs, funnel, discounts, attribution) on a demo world,
against a plain SQL aggregate of the same month's orders (count and sum by channel) in the same
run: the least any report of that month costs on this database. Warm cache, best of three.

    python bench/reports.py --people 100000 [--people 1000000] [--workdir var/bench]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from worlds import ROOT, world  # bench/ is the script's directory, so on sys.path

SINCE, UNTIL = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)


def best(fn: Callable[[], Any], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--people", type=int, action="append", help="world sizes (default 100000)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    opts = ap.parse_args()
    opts.workdir.mkdir(parents=True, exist_ok=True)
    for people in opts.people or [100_000]:
        db, _ = world(opts.workdir, people)
        measure(people, f"sqlite:///{db}")


def measure(people: int, url: str) -> None:
    from omo.analytics.attribution import attribution
    from omo.analytics.discounts import discount_cost
    from omo.analytics.funnel import funnel
    from omo.analytics.kpis import kpis
    from omo.db import UnitOfWork, make_engine
    from omo.settings import Settings

    engine = make_engine(Settings(database_url=url))
    uow = UnitOfWork(engine)
    plain = sa.text(
        "SELECT channel, count(*), sum(total) FROM orders "
        "WHERE ordered_at >= :a AND ordered_at < :b GROUP BY channel"
    )
    bounds = {"a": SINCE.strftime("%Y-%m-%d"), "b": UNTIL.strftime("%Y-%m-%d")}

    def baseline() -> None:
        with engine.connect() as conn:
            conn.execute(plain, bounds).all()

    reports: dict[str, Callable[[], Any]] = {
        "kpis": lambda: kpis(uow, since=SINCE, until=UNTIL),
        "funnel": lambda: funnel(uow, since=SINCE, until=UNTIL),
        "discounts": lambda: discount_cost(uow, since=SINCE, until=UNTIL, target_margin=0.3),
        "attribution": lambda: attribution(uow, since=SINCE, until=UNTIL, lookback_days=30),
    }
    base = best(baseline)
    print(f"\n{people:,} people, October 2026 (SQLite, warm, best of 3, this machine)")
    print(f"  plain SQL: the month's orders by channel  {base:7.3f} s  ×1.00")
    for name, fn in reports.items():
        seconds = best(fn)
        print(f"  {name:<40} {seconds:7.3f} s  ×{seconds / base:.1f}")
    engine.dispose()


if __name__ == "__main__":
    main()
