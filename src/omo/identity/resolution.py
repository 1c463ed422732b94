"""`omo resolve`: probabilistic identity resolution over every active member, in batch.

1. read a consistent snapshot of the members (one read transaction) as linkage records;
2. train the model on them (EM, no labels) and score the blocked pairs (DuckDB or Spark);
3. decide (identity/decisions.py): merge clusters above the auto-merge threshold through the
   same merge use case as a manual merge (audited, undoable), in batches of clusters that each
   commit on their own; queue the grey zone for review; remember rejections;
4. record the run: the trained model, the counts, timings and the KPIs before and after.

The request path never waits on it: the server keeps serving while a run reads its snapshot,
and each merge batch is a short write transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from omo.db import UnitOfWork
from omo.identity import linkage
from omo.identity.decisions import ClusterMerge, Pair, Plan, decide, estimated_duplicates, pair
from omo.identity.models import MatchReview, ResolutionRun
from omo.identity.schemas import RunRead
from omo.identity.service import MergeOrder, merge_many, open_between
from omo.identity.snapshot import member_records
from omo.members import service as members
from omo.referrals import service as referrals
from omo.shared import clock
from omo.shared.errors import NotFound, ValidationFailed
from omo.shared.gcpause import collector_paused

# clusters per write transaction: on SQLite every other writer waits for one (0.3 s at 200 on
# two cores); 1,000 merges about 15 % faster for runs when the shop is closed
MERGE_BATCH = 200


@dataclass(frozen=True)
class ResolveOptions:
    engine: linkage.Engine = "duckdb"
    auto_merge: float = 0.99
    review: float = 0.3
    max_cluster: int = 8
    training: linkage.Training = field(default_factory=linkage.Training)
    spark_master: str = "local[2]"
    dry_run: bool = False  # score and report, change nothing
    merge_batch: int = MERGE_BATCH


Progress = Callable[[str], None]


def resolve(
    uow: UnitOfWork, options: ResolveOptions, *, actor: str = "omo resolve",
    progress: Progress | None = None,
) -> RunRead:  # fmt: skip
    """Run probabilistic resolution once; returns the run with its counts, model and KPIs."""
    if not 0 < options.review <= options.auto_merge <= 1:
        raise ValidationFailed(
            "thresholds must satisfy 0 < review <= auto_merge <= 1", field="thresholds"
        )
    if options.merge_batch < 1:
        raise ValidationFailed("merge_batch must be at least 1", field="merge_batch")
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}

    @contextmanager
    def timer(name: str) -> Iterator[None]:
        say(name)
        t0 = time.perf_counter()
        yield
        timings[name] = round(time.perf_counter() - t0, 3)

    run_id = _start(uow, options)
    try:
        with timer("snapshot"):
            records = member_records(uow)
            with uow.read() as session:
                rejected = _rejected_pairs(session)
        kpis: dict[str, Any] = {"before": {"active_members": records.num_rows}}
        scored = linkage.Scored(pairs=[], model={})
        if records.num_rows >= 2:
            scored = linkage.score(
                records, engine=options.engine, threshold=options.review,
                training=options.training, timer=timer, spark_master=options.spark_master,
            )  # fmt: skip
        with timer("decide"), collector_paused():  # 130,000 pairs at 1M: no cycles among them
            pairs = [pair(p["a"], p["b"], p["probability"], p["weight"], p["weights"])
                     for p in scored.pairs]  # fmt: skip
            plan = decide(
                pairs, auto_merge=options.auto_merge, review=options.review,
                rejected=rejected, max_cluster=options.max_cluster,
            )  # fmt: skip
            before_dups = estimated_duplicates(p.key for p in pairs if p.key not in rejected)
            kpis["before"]["duplicate_rate"] = _rate(before_dups, records.num_rows)
        merged = 0
        if not options.dry_run:
            with timer("merge"):
                merged = _apply_merges(uow, run_id, plan.merges, actor, options.merge_batch)
            with timer("queue"):
                _queue_reviews(uow, run_id, plan.reviews)
                _settle_referrals(uow)
        with uow.read() as session:
            active = members.active_count(session)
            pending = _pending_pairs(session)
        if options.dry_run:  # what the run would leave
            active -= sum(len(c.absorbed) for c in plan.merges)
            pending = [r.key for r in plan.reviews]
        kpis["after"] = {
            "active_members": active,
            "duplicate_rate": _rate(estimated_duplicates(pending), active),
        }
        kpis["held_back_clusters"] = plan.held_back
        return _finish(uow, run_id, scored, plan, merged, kpis, timings, records.num_rows)
    except Exception as exc:
        _fail(uow, run_id, exc)
        raise


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _start(uow: UnitOfWork, options: ResolveOptions) -> int:
    def run(session: Session) -> int:
        row = ResolutionRun(
            engine=options.engine, status="running", started_at=clock.now(),
            thresholds={"auto_merge": options.auto_merge, "review": options.review},
            records=0, pairs_scored=0, merges=0, reviews_queued=0, model={}, kpis={},
            timings={},
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id

    return uow.run(run)


def _finish(
    uow: UnitOfWork, run_id: int, scored: linkage.Scored, plan: Plan, merged: int,
    kpis: dict[str, Any], timings: dict[str, float], records: int,
) -> RunRead:  # fmt: skip
    def run(session: Session) -> RunRead:
        row = session.get(ResolutionRun, run_id)
        assert row is not None
        row.status, row.finished_at = "done", clock.now()
        row.records, row.pairs_scored = records, len(scored.pairs)
        row.merges, row.reviews_queued = merged, len(plan.reviews)
        row.model, row.kpis, row.timings = scored.model, kpis, timings
        session.flush()
        return RunRead.model_validate(row)

    return uow.run(run)


def _fail(uow: UnitOfWork, run_id: int, exc: Exception) -> None:
    def run(session: Session) -> None:
        row = session.get(ResolutionRun, run_id)
        if row is not None:
            row.status, row.finished_at = "failed", clock.now()
            row.error = f"{type(exc).__name__}: {exc}"[:500]

    uow.run(run)


def _rejected_pairs(session: Session) -> set[tuple[int, int]]:
    rows = session.execute(
        select(MatchReview.member_id, MatchReview.other_member_id).where(
            MatchReview.status == "rejected"
        )
    )
    return {(a, b) for a, b in rows}


def _pending_pairs(session: Session) -> list[tuple[int, int]]:
    rows = session.execute(
        select(MatchReview.member_id, MatchReview.other_member_id).where(
            MatchReview.status == "pending"
        )
    )
    return [(a, b) for a, b in rows]


def _apply_merges(
    uow: UnitOfWork, run_id: int, clusters: list[ClusterMerge], actor: str, size: int
) -> int:
    """Merge cluster by cluster, `size` clusters per transaction. A cluster with a member that
    is no longer active (merged since the snapshot) is left for the next run.

    With the collector paused: the run holds millions of objects by now (the pairs, the plan),
    and each full collection the merges' allocations set off walked all of them (the replay
    of 32,374 merges of the 1M world beside 130,000 pairs' worth of objects: 22.3 s with the
    collector, 18.1 s without). The merges make little cyclic garbage (a session per batch)."""
    with collector_paused():
        return _merge_batches(uow, run_id, clusters, actor, size)


def _merge_batches(
    uow: UnitOfWork, run_id: int, clusters: list[ClusterMerge], actor: str, size: int
) -> int:
    merged = 0
    for start in range(0, len(clusters), size):
        batch = clusters[start : start + size]

        def run(session: Session, batch: list[ClusterMerge] = batch) -> int:
            ids = [m for c in batch for m in (c.survivor, *c.absorbed)]
            locked = {m.id: m for m in members.lock_member_rows(session, ids)}
            active = {i for i, m in locked.items() if m.status == "active"}
            orders = [
                MergeOrder(c.survivor, absorbed, "probabilistic",
                           _evidence(run_id, c.evidence[absorbed]))
                for c in batch
                if {c.survivor, *c.absorbed} <= active
                for absorbed in c.absorbed
            ]  # fmt: skip
            merge_many(
                session, orders, actor=actor, now=clock.now(), locked=locked, audit_ids=False
            )
            return len(orders)

        merged += uow.run(run)
    return merged


def _evidence(run_id: int, p: Pair) -> dict[str, Any]:
    return {
        "run_id": run_id, "pair": [p.a, p.b], "match_probability": round(p.probability, 6),
        "match_weight": p.weight, "weights": p.weights,
    }  # fmt: skip


def _queue_reviews(uow: UnitOfWork, run_id: int, reviews: list[Pair]) -> None:
    """Upsert the grey-zone pairs; pending pairs this run no longer proposes become obsolete.
    In Core, reading only the keys and statuses of the reviews there are (the ORM built and
    flushed an object per review: 2.4 s of a 1M run for some 20,000)."""

    def run(session: Session) -> None:
        now = clock.now()
        t: Table = MatchReview.__table__  # type: ignore[assignment]
        conn = session.connection()
        existing = {
            (a, b): (review_id, status)
            for review_id, a, b, status in conn.execute(
                select(t.c.id, t.c.member_id, t.c.other_member_id, t.c.status)
            )
        }
        proposed, added, renewed = set(), [], []
        for p in reviews:
            proposed.add(p.key)
            found = existing.get(p.key)
            if found is not None and found[1] not in ("pending", "obsolete"):
                continue  # a person decided this pair (a merge they accepted and later undid)
            scored = {"run_id": run_id, "match_probability": p.probability,
                      "match_weight": p.weight, "weights": p.weights}  # fmt: skip
            if found is None:
                added.append({"member_id": p.a, "other_member_id": p.b, **scored,
                              "status": "pending", "created_at": now})  # fmt: skip
            else:
                renewed.append({"_id": found[0], **scored})
        if added:
            conn.execute(insert(t).values(updated_at=now), added)
        by_id = update(t).where(t.c.id == bindparam("_id"))
        if renewed:
            conn.execute(by_id.values(status="pending", updated_at=now), renewed)
        gone = [{"_id": i} for key, (i, status) in existing.items()
                if key not in proposed and status == "pending"]  # fmt: skip
        if gone:
            conn.execute(by_id.values(status="obsolete", updated_at=now), gone)

    uow.run(run)


def _settle_referrals(uow: UnitOfWork) -> None:
    """Referrals held on a review that this run merged, or made obsolete, settle now."""
    uow.run(lambda session: referrals.settle_held(session, member_ids=None, now=clock.now(),
                                                  open_review=open_between))  # fmt: skip


def get_run(uow: UnitOfWork, run_id: int) -> RunRead:
    with uow.read() as session:
        row = session.get(ResolutionRun, run_id)
        if row is None:
            raise NotFound(f"resolution run {run_id} does not exist", field="run_id")
        return RunRead.model_validate(row)


def list_runs(uow: UnitOfWork, *, limit: int) -> list[RunRead]:
    with uow.read() as session:
        rows = session.scalars(select(ResolutionRun).order_by(ResolutionRun.id.desc()).limit(limit))
        return [RunRead.model_validate(r) for r in rows]
