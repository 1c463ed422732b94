"""Seconds to evaluate every time trigger of the seed playbook over a demo world, against a
plain scan of the same tables in the same run.

For each world (a demo SQLite file, see worlds.py), in one fresh process and one transaction
that is rolled back at the end (the world is left as it was):
1. baseline: `SELECT count(*)` over members joined to member_stats and to member_scores, and
   over the events of the trigger windows — the least a pass over these tables costs;
2. omo: the playbook's time-trigger journeys (first purchase nudge, cart abandoned, birthday,
   dormant, high potential, repurchase due, low NPS) switched on, and one evaluation of all of
   them as `omo jobs run` does it: one set-based query per journey, the entries inserted.
The goal is all time triggers over 1,000,000 members in under 30 s.

    python bench/journeys.py --people 100000 [--people 1000000] [--workdir var/bench]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from worlds import ROOT, UNTIL, peak_mb, phase, warm, world

# 10:00 in Taipei on the day the demo worlds end
NOW = datetime.fromisoformat(f"{UNTIL}T02:00:00+00:00")

BASELINE = [
    "SELECT count(*) FROM members m JOIN member_stats s ON s.member_id = m.id "
    "WHERE m.status = 'active' AND s.last_order_at IS NOT NULL",
    "SELECT count(*) FROM members m JOIN member_scores c ON c.member_id = m.id "
    "WHERE m.status = 'active' AND c.segment IS NOT NULL",
    "SELECT count(*) FROM members WHERE status = 'active' AND birth_date IS NOT NULL",
    "SELECT count(*) FROM events WHERE kind IN ('add_to_cart', 'feedback') "
    "AND occurred_at > '2026-10-20'",
]


def run_phase(db: str) -> dict[str, Any]:
    from omo.db import UnitOfWork, make_engine
    from omo.journeys import definition as d
    from omo.journeys import playbook, runner
    from omo.journeys.models import Journey, JourneyVersion
    from omo.settings import Settings
    from omo.shared import clock

    clock.set_clock(lambda: NOW)
    settings = Settings(database_url=db)
    engine = make_engine(settings)
    uow = UnitOfWork(engine)
    with uow.read() as session:
        started = time.perf_counter()
        for sql in BASELINE:
            session.execute(sa.text(sql)).scalar()
        baseline = time.perf_counter() - started
    session = uow._write()  # one transaction, rolled back: the world stays as it was
    with session.begin():
        for n, (key, raw) in enumerate(playbook.JOURNEYS.items()):
            definition = d.JourneyDefinition.model_validate(raw)
            if definition.trigger.kind in d.EVENT_TRIGGERS:
                continue
            stored = definition.model_dump(mode="json", by_alias=True)
            journey = Journey(
                key=key, name=definition.name, version=1, definition=stored, enabled=True,
                salt=7919 * (n + 1), created_at=NOW, updated_at=NOW,
            )  # fmt: skip
            session.add(journey)
            session.flush()
            session.add(
                JourneyVersion(
                    journey_id=journey.id, version=1, definition=stored, actor="bench",
                    created_at=NOW,
                )
            )  # fmt: skip
        session.flush()
        started = time.perf_counter()
        entered = runner.enter_time_triggers(session, now=NOW, settings=settings)
        triggers = time.perf_counter() - started
        members = session.execute(sa.text("SELECT count(*) FROM members")).scalar()
        session.rollback()
    return {"baseline": baseline, "triggers": triggers, "entered": entered,
            "members": members, "peak_mb": peak_mb()}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--people", type=int, action="append", help="world sizes (default 100000)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.phase:
        print(json.dumps(run_phase(*opts.args)))
        return
    opts.workdir.mkdir(parents=True, exist_ok=True)
    for people in opts.people or [100_000]:
        db, _ = world(opts.workdir, people)
        warm(db)
        result = phase(__file__, "triggers", f"sqlite:///{db}")
        total = sum(result["entered"].values())
        print(
            f"\n{people:,} people: {result['members']:,} members (SQLite, this machine, same run)"
        )
        print(
            f"  baseline: plain scans of members, stats, scores, events {result['baseline']:6.2f} s"
        )
        print(
            f"  omo: all time triggers of the playbook  {result['triggers']:6.2f} s "
            f"(×{result['triggers'] / result['baseline']:.2f} of the scans)  "
            f"{total:,} entries  peak {result['peak_mb']:,.0f} MB"
        )
        print(f"    entered per journey {json.dumps(result['entered'])}")


if __name__ == "__main__":
    main()
