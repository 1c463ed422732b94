"""Probabilistic identity resolution against the demo world's ground truth, the review queue,
the runs and the KPIs (SQLite + PostgreSQL for the workflow; the accuracy run on SQLite)."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from omo.cli import alembic_config, app
from omo.db import UnitOfWork, make_engine
from omo.demo.load import DemoSpec, load_demo
from omo.identity.matchkeys import name_keys
from omo.identity.resolution import ResolveOptions, resolve
from omo.identity.schemas import RunRead
from omo.settings import Settings, get_settings
from omo.shared.errors import ValidationFailed
from omo.testing.resolution import Outcome, outcome, pairs_of, scores
from tests.conftest import dump


@dataclass
class Resolved:
    run: RunRead
    outcome: Outcome  # what the run left: merges, and the queue
    person: dict[int, int]  # member loaded -> true person
    name: dict[int, str]
    # the audit: (survivor, absorbed, reason, evidence) per merge, and who each merged one joined
    audits: list[tuple[int, int, str, dict[str, Any]]]
    merged_into: dict[int, int]


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Resolved]:
    tmp = tmp_path_factory.mktemp("resolve")
    url = f"sqlite:///{tmp / 'world.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    spec = DemoSpec(people=4000, seed=23, months=24, until=date(2026, 11, 1))
    load_demo(engine, spec, tmp / "truth")
    records = pq.read_table(tmp / "truth" / "records.parquet").to_pylist()
    person = {r["member_id"]: r["person_id"] for r in records}
    with engine.connect() as conn:
        name = dict(conn.execute(sa.text("SELECT id, name FROM members")).all())
    run = resolve(UnitOfWork(engine), ResolveOptions())
    with engine.connect() as conn:
        left = outcome(conn)
        audits = [(a, b, reason, json.loads(evidence)) for a, b, reason, evidence in conn.execute(
            sa.text("SELECT survivor_id, absorbed_id, reason, evidence FROM identity_merges")
        )]  # fmt: skip
        merged_into = dict(conn.execute(sa.text(
            "SELECT id, merged_into_id FROM members WHERE status = 'merged'"
        )).all())  # fmt: skip
    yield Resolved(run, left, person, name, audits, merged_into)
    engine.dispose()


def test_precision_at_auto_merge_and_recall_with_review(resolved: Resolved) -> None:
    truth = pairs_of(resolved.person)
    merged = pairs_of(resolved.outcome.merged)
    precision, merged_recall, _ = scores(merged, truth)
    _, recall, _ = scores(pairs_of(resolved.outcome.queued), truth)
    print(
        f"\ndemo world: {len(truth)} true duplicate pairs; auto-merged {len(merged)} "
        f"(precision {precision:.4f}, recall {merged_recall:.4f}); "
        f"with review recall {recall:.4f}; run {resolved.run.timings}"
    )
    assert len(truth) > 300
    assert precision >= 0.99
    assert recall >= 0.95


def test_chinese_name_variants_are_found(resolved: Resolved) -> None:
    """Traditional/simplified, romanised marketplace names and similar-character typos."""
    truth = pairs_of(resolved.person)
    found = pairs_of(resolved.outcome.queued)
    kinds: dict[str, list[bool]] = defaultdict(list)
    for a, b in truth:
        x, y = resolved.name[a], resolved.name[b]
        kx, ky = name_keys(x), name_keys(y)
        if x == y:
            continue
        if kx.cjk and kx.cjk == ky.cjk:
            kind = "traditional/simplified"
        elif (kx.cjk is None) != (ky.cjk is None):
            kind = "romanised"
        elif kx.one_apart and ky.one_apart and set(kx.one_apart) & set(ky.one_apart):
            kind = "similar character"
        else:
            continue
        kinds[kind].append((a, b) in found)
    print({k: f"{sum(v)}/{len(v)}" for k, v in kinds.items()})
    assert set(kinds) == {"traditional/simplified", "romanised", "similar character"}
    for kind, hits in kinds.items():
        assert sum(hits) / len(hits) >= 0.9, (kind, hits)


def test_the_run_records_its_model_kpis_and_explains_each_merge(resolved: Resolved) -> None:
    run = resolved.run
    assert run.status == "done" and run.engine == "duckdb"
    assert run.records > 4000 and run.pairs_scored >= run.merges > 0
    assert set(run.model["comparisons"]) >= {"name", "birth_date", "address", "phone"}
    levels = {lv["level"] for lv in run.model["comparisons"]["name"]}
    assert {"same name", "same romanisation", "one character apart"} <= levels
    before, after = run.kpis["before"], run.kpis["after"]
    assert before["duplicate_rate"] > after["duplicate_rate"]
    assert after["active_members"] == before["active_members"] - run.merges
    assert {"snapshot", "train", "predict", "merge"} <= set(run.timings)
    # one audit row per merged member, saying which run merged it, on which pair and why
    assert len(resolved.audits) == run.merges == len(resolved.merged_into)
    assert {b: a for a, b, _r, _e in resolved.audits} == resolved.merged_into
    for _survivor, absorbed, reason, evidence in resolved.audits:
        assert reason == "probabilistic" and evidence["run_id"] == run.id
        assert absorbed in evidence["pair"] and evidence["match_probability"] >= 0.99
        assert {"name", "birth_date"} <= set(evidence["weights"])


# --- the review workflow, on SQLite and PostgreSQL ----------------------------------------------


@pytest.fixture
def small_world(engine: sa.Engine, tmp_path: Path) -> Path:
    load_demo(engine, DemoSpec(people=700, seed=3, months=24, until=date(2026, 11, 1)), tmp_path)
    return tmp_path


def test_review_queue_accept_reject_and_a_second_run(
    small_world: Path, uow: UnitOfWork, engine: sa.Engine, api: TestClient
) -> None:
    options = ResolveOptions(review=0.01, auto_merge=0.999)
    first = resolve(uow, options)
    assert first.reviews_queued >= 3, first
    page = api.get("/api/v1/identity/reviews", params={"limit": 2}).json()
    assert page["total"] == first.reviews_queued and len(page["items"]) == 2
    top = page["items"][0]
    assert top["match_probability"] >= page["items"][1]["match_probability"]
    assert set(top["weights"]) >= {"name", "address", "birth_date"}
    assert {"level", "weight"} <= set(top["weights"]["name"])
    assert top["member"]["id"] == top["member_id"]
    assert all("*" in i for i in top["member"]["identifiers"] if i.startswith("phone"))

    accepted = api.post(f"/api/v1/identity/reviews/{top['id']}/accept", json={"note": "same"})
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "accepted" and body["merge_id"] and body["decided_by"] == "test-all"
    merge = api.get(f"/api/v1/merges/{body['merge_id']}").json()
    assert merge["reason"] == "review" and merge["evidence"]["review_id"] == top["id"]
    assert api.post(f"/api/v1/identity/reviews/{top['id']}/accept").status_code == 409

    rest = api.get("/api/v1/identity/reviews", params={"limit": 500}).json()["items"]
    other = next(r for r in rest if r["id"] != top["id"])
    rejected = api.post(f"/api/v1/identity/reviews/{other['id']}/reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert api.post(f"/api/v1/identity/reviews/{other['id']}/reject").status_code == 409

    # a pair merged some other way meanwhile: accepting it merges nothing and says so
    taken = {top["member_id"], top["other_member_id"], other["member_id"], other["other_member_id"]}
    third = next(r for r in rest if not {r["member_id"], r["other_member_id"]} & taken)
    by_hand = api.post(
        f"/api/v1/members/{third['member_id']}/merge",
        json={"other_member_id": third["other_member_id"]},
    )
    assert by_hand.status_code == 201, by_hand.text
    late = api.post(f"/api/v1/identity/reviews/{third['id']}/accept").json()
    assert late["status"] == "obsolete" and late["merge_id"] is None
    assert late["member"]["status"] == "active" and late["other_member"]["status"] == "merged"

    # the next run neither queues nor merges the rejected pair, and keeps the decisions; the
    # pairs it proposes again keep their row (now of this run), the others become obsolete
    # (a review threshold in the middle of the waiting pairs, so that there are both)
    reviews = sa.text("SELECT id, status, run_id, match_probability FROM identity_reviews")
    with engine.connect() as conn:
        waiting = {i: p for i, status, _run, p in conn.execute(reviews) if status == "pending"}
    middle = sorted(waiting.values())[len(waiting) // 2]
    # a referral held on the least likely pair (its referee bought while the review waited)
    least = min(waiting, key=lambda i: waiting[i])
    with engine.begin() as conn:
        a, b = conn.execute(sa.text("SELECT member_id, other_member_id FROM identity_reviews "
                                    "WHERE id = :i"), {"i": least}).one()  # fmt: skip
        conn.execute(sa.text("INSERT INTO referral_codes (member_id, code, created_at) "
                             "VALUES (:a, 'RHELD01', '2026-11-01 00:00:00.000000')"), {"a": a})  # fmt: skip
        conn.execute(sa.text(
            "INSERT INTO referrals (referrer_id, referee_id, code, status, reason, created_at) "
            "VALUES (:a, :b, 'RHELD01', 'held', 'possibly one person', "
            "'2026-11-01 00:00:00.000000')"), {"a": a, "b": b})  # fmt: skip
    second = resolve(uow, ResolveOptions(review=middle, auto_merge=options.auto_merge))
    with engine.connect() as conn:
        now_reviews = {i: (status, run) for i, status, run, _p in conn.execute(reviews)}
    assert {now_reviews[i][0] for i in waiting} == {"pending", "obsolete"}
    # the run no longer proposes that pair: the referral is not left held (no order here to
    # pay on, so it waits for one)
    assert now_reviews[least][0] == "obsolete"
    with engine.connect() as conn:
        held = conn.execute(sa.text("SELECT status FROM referrals WHERE code = 'RHELD01'"))
        assert held.scalar_one() == "pending"
    assert {run for status, run in now_reviews.values() if status == "pending"} == {second.id}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, status FROM identity_reviews WHERE id IN (:a, :b)"),
            {"a": top["id"], "b": other["id"]},
        ).all()
        now_is = outcome(conn).merged
    assert dict(rows) == {top["id"]: "accepted", other["id"]: "rejected"}
    assert now_is[other["member_id"]] != now_is[other["other_member_id"]]
    assert second.status == "done"

    runs = api.get("/api/v1/identity/runs").json()
    assert [x["id"] for x in runs] == [second.id, first.id]
    one = api.get(f"/api/v1/identity/runs/{first.id}").json()
    assert one["model"]["comparisons"]["name"][0]["level"] == "same name"
    kpis = api.get("/api/v1/kpis/identity").json()
    assert kpis["resolution"]["run_id"] == second.id
    assert (
        kpis["resolution"]["pending_reviews"] == api.get("/api/v1/identity/reviews").json()["total"]
    )

    # the merge a reviewer accepted can be undone like any other
    undone = api.post(f"/api/v1/merges/{body['merge_id']}/undo")
    assert undone.status_code == 200, undone.text


def test_review_endpoints_refuse_bad_input(api: TestClient, client: TestClient) -> None:
    assert api.get("/api/v1/identity/reviews", params={"status": "maybe"}).status_code == 422
    assert api.get("/api/v1/identity/reviews", params={"limit": 0}).status_code == 422
    assert api.get("/api/v1/identity/reviews/999").status_code == 404
    assert api.post("/api/v1/identity/reviews/999/accept").status_code == 404
    assert api.post("/api/v1/identity/reviews/999/reject").status_code == 404
    assert api.post("/api/v1/identity/reviews/1/accept", json={"x": 1}).status_code == 422
    assert api.get("/api/v1/identity/runs/999").status_code == 404
    assert api.get("/api/v1/identity/runs", params={"limit": 1000}).status_code == 422
    client.headers.pop("Authorization", None)
    assert client.get("/api/v1/identity/reviews").status_code == 401


def test_a_dry_run_changes_nothing_but_its_own_record(
    small_world: Path, uow: UnitOfWork, engine: sa.Engine
) -> None:
    before = dump(engine)
    run = resolve(uow, ResolveOptions(dry_run=True))
    after = dump(engine)
    assert run.merges == 0 and run.pairs_scored > 0
    assert {k: v for k, v in after.items() if k != "identity_runs"} == {
        k: v for k, v in before.items() if k != "identity_runs"
    }
    assert len(after["identity_runs"]) == 1


def test_cli_resolve(small_world: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMO_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(app, ["resolve", "--review", "0.3"])
        assert out.exit_code == 0, out.output
        last = out.output.strip().splitlines()[-1]
        assert last.startswith("run 1: ") and "merged" in last and "duplicate-account rate" in last
        bad = runner.invoke(app, ["resolve", "--auto-merge", "0.2", "--review", "0.5"])
        assert bad.exit_code == 2 and "thresholds" in bad.output
        bad = runner.invoke(app, ["resolve", "--engine", "oracle"])
        assert bad.exit_code == 2
        bad = runner.invoke(app, ["resolve", "--merge-batch", "0"])
        assert bad.exit_code == 2 and "merge-batch" in bad.output
    finally:
        get_settings.cache_clear()


def test_the_merge_batch_changes_the_transactions_not_the_outcome(tmp_path: Path) -> None:
    first = tmp_path / "a.sqlite"
    url = f"sqlite:///{first}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    load_demo(engine, DemoSpec(people=700, seed=3, months=24, until=date(2026, 11, 1)), tmp_path)
    engine.dispose()
    shutil.copy(first, tmp_path / "b.sqlite")
    left = {}
    for name, size in (("a", 200), ("b", 2)):
        engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / f'{name}.sqlite'}"))
        run = resolve(UnitOfWork(engine), ResolveOptions(merge_batch=size))
        with engine.connect() as conn:
            left[name] = (run.merges, pairs_of(outcome(conn).merged))
        engine.dispose()
    assert left["a"][0] > 2  # more merges than one small batch holds
    assert left["a"] == left["b"]
    with pytest.raises(ValidationFailed, match="merge_batch"):
        resolve(UnitOfWork(make_engine(Settings(database_url=url))), ResolveOptions(merge_batch=0))


def test_a_run_with_nothing_to_learn_from_fails_clearly_and_is_recorded(
    uow: UnitOfWork, engine: sa.Engine
) -> None:
    from tests.factories import enrol

    enrol(uow, phone="0912-000-001", name="王小明", birth_date="1980-01-01")
    enrol(uow, phone="0912-000-002", name="林美華", birth_date="1990-02-02")
    with pytest.raises(ValidationFailed, match="nothing to train"):
        resolve(uow, ResolveOptions())
    with engine.connect() as conn:
        status, error = conn.execute(sa.text("SELECT status, error FROM identity_runs")).one()
    assert status == "failed" and "nothing to train" in error
