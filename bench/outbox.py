"""What keeping the outbox to its retention period costs a scheduler's pass, against writing
the same facts in the same run.

For each backend, on a fresh migrated database (SQLite file; PostgreSQL started from the
machine's binaries with fsync on):
1. baseline: N facts published as sales publish them (the prepared INSERT), in transactions of
   1,000, the journeys' dispatcher marking them read; half 120 days old, half 10 days old;
2. a pass removing what is past 90 days (`webhooks.retention.prune_outbox`, chunks of 5,000 in
   their own transactions; the budget raised to take all at once);
3. a pass with nothing to remove (what every scheduler pass pays from then on), against a
   `SELECT 1` in a transaction of the same unit of work.

    python bench/outbox.py [--facts 200000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def run(url: str, facts: int) -> dict[str, float]:
    from alembic import command

    from omo.cli import alembic_config
    from omo.db import UnitOfWork, make_engine
    from omo.messaging import outbox
    from omo.settings import Settings
    from omo.shared import clock
    from omo.webhooks import retention

    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    uow = UnitOfWork(engine)
    started = time.perf_counter()
    for start in range(0, facts, 1_000):
        old = start < facts // 2
        at = NOW - timedelta(days=120 if old else 10)

        def write(session: sa.orm.Session, start: int = start, at: datetime = at) -> None:
            for n in range(start, min(start + 1_000, facts)):
                outbox.publish(
                    session, topic="OrderRecorded", key=f"order:{n}", new_key=True, now=at,
                    payload={"order_id": n, "member_id": n % 997, "total": "1280.00"},
                )  # fmt: skip

        uow.run(write)
    uow.run(lambda s: s.execute(sa.text("UPDATE outbox SET state = 'delivered'")))
    written = time.perf_counter() - started

    clock.set_clock(lambda: NOW)
    started = time.perf_counter()
    removed = retention.prune_outbox(uow, retention_days=90, budget=facts)
    pruned = time.perf_counter() - started
    assert removed == facts // 2, removed

    idle, select1 = [], []
    for _ in range(200):
        t = time.perf_counter()
        assert retention.prune_outbox(uow, retention_days=90) == 0
        idle.append(time.perf_counter() - t)
        t = time.perf_counter()
        uow.run(lambda s: s.execute(sa.text("SELECT 1")).scalar())
        select1.append(time.perf_counter() - t)
    engine.dispose()
    return {
        "written_s": written, "pruned_s": pruned, "idle_ms": statistics.median(idle) * 1e3,
        "select1_ms": statistics.median(select1) * 1e3,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--facts", type=int, default=200_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                figures = run(f"sqlite:///{Path(tmp) / 'omo.sqlite'}", args.facts)
            else:
                from omo.testing.postgres import PostgresServer

                server = PostgresServer(durable=True).start()
                try:
                    figures = run(server.url(), args.facts)
                finally:
                    server.stop()
        half = args.facts // 2
        print(
            f"{backend}: {args.facts:,} facts written in {figures['written_s']:.2f} s; "
            f"{half:,} past retention removed in {figures['pruned_s']:.2f} s "
            f"(×{figures['pruned_s'] / figures['written_s']:.2f} of writing them all); "
            f"a pass with nothing to remove {figures['idle_ms']:.2f} ms "
            f"(×{figures['idle_ms'] / figures['select1_ms']:.1f} of a SELECT 1 transaction)"
        )


if __name__ == "__main__":
    main()
