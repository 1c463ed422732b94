"""`omo refresh` end to end on SQLite and PostgreSQL: figures that agree with the orders as
recorded (refunds, cancellations, merges), segments, saved rules, exports, runs and failures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from omo.analytics import refresh as refresh_module
from omo.analytics.models import MemberScore
from omo.analytics.refresh import STEPS, RefreshOptions, refresh
from omo.analytics.schemas import ScoreRead
from omo.checkout.refunds import RefundRequest
from omo.checkout.refunds import refund as refund_order
from omo.db import UnitOfWork
from omo.identity.service import merge_use_case
from tests.factories import enrol, post_order, store

AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)  # 20:00 in Taipei


def at(day: str) -> str:
    return f"{day}T02:00:00+00:00"  # 10:00 in Taipei


def line(price: str, quantity: int = 1) -> list[dict[str, Any]]:
    return [{"sku": "SKU-1", "quantity": quantity, "unit_price": price}]


@pytest.fixture
def world(uow: UnitOfWork) -> dict[str, int]:
    store(uow)
    ids = {
        name: enrol(uow, phone=phone, name=name).member.id
        for name, phone in [
            ("A", "0911-000-001"),
            ("B", "0911-000-002"),
            ("C", "0911-000-003"),
            ("D", "0911-000-004"),
            ("E", "0911-000-005"),
        ]
    }
    post_order(uow, member_id=ids["A"], ordered_at=at("2026-06-20"), lines=line("300.00", 2))
    post_order(
        uow, member_id=ids["A"], ordered_at=at("2026-06-25"), lines=line("300.00"),
        discount_total="50.00",
    )  # fmt: skip
    post_order(
        uow, member_id=ids["A"], channel="pos", store="TPE-101", ordered_at=at("2026-06-25"),
        lines=line("300.00"),
    )  # fmt: skip
    post_order(
        uow, member_id=ids["B"], channel="pos", store="TPE-101", ordered_at=at("2025-01-10"),
        lines=line("100.00"),
    )  # fmt: skip
    refunded = post_order(uow, member_id=ids["C"], ordered_at=at("2026-06-29"), lines=line("1000"))
    refund_order(uow, order_id=refunded.id, req=RefundRequest(idempotency_key="r-1"), actor="test")
    post_order(uow, member_id=ids["C"], ordered_at=at("2026-06-01"), lines=line("500.00"))
    post_order(
        uow, member_id=ids["C"], ordered_at=at("2026-06-15"), lines=line("900.00"),
        status="cancelled",
    )  # fmt: skip
    post_order(uow, member_id=ids["E"], ordered_at=at("2026-06-28"), lines=line("200.00"))
    merge_use_case(uow, survivor_id=ids["A"], absorbed_id=ids["E"], note=None, actor="test")
    return ids


def scores_of(uow: UnitOfWork) -> dict[int, ScoreRead]:
    with uow.read() as session:
        return {
            s.member_id: ScoreRead.model_validate(s) for s in session.scalars(select(MemberScore))
        }


def test_refresh_figures_match_the_orders_as_recorded(uow, world):
    run = refresh(uow, RefreshOptions(as_of=AS_OF))
    assert run.status == "done"
    assert (run.members, run.buyers) == (4, 3)  # E was merged into A
    assert run.segments == {"lost": 1, "prospect": 1, "vip": 2}
    assert set(run.timings) == set(STEPS)
    scores = scores_of(uow)
    a, b, c, d = (scores[world[k]] for k in "ABCD")
    assert world["E"] not in scores
    # A: 600 + 250 (after a 50 discount) + 300 in store the same day + E's 200 after the merge
    assert (a.orders, a.purchase_days, str(a.spend)) == (4, 3, "1350.00")
    assert (a.recency_days, a.tenure_days, a.online_orders, a.offline_orders) == (2, 10, 3, 1)
    assert a.discount_share == pytest.approx(0.25)
    assert (a.r, a.f, a.m, a.segment, a.lifecycle) == (5, 5, 5, "vip", "active")
    assert a.tags == ["omnichannel"]
    assert (b.orders, str(b.spend), b.recency_days) == (1, "100.00", 536)
    assert (b.r, b.f, b.m, b.segment, b.lifecycle, b.tags) == (2, 4, 2, "lost", "lost", ["dormant"])
    # C: the refunded order and the cancelled one are not purchases
    assert (c.orders, str(c.spend), c.recency_days, c.tenure_days) == (1, "500.00", 29, 29)
    assert (c.r, c.f, c.m, c.segment, c.lifecycle) == (4, 4, 4, "vip", "new")
    assert (d.orders, str(d.spend), d.r, d.segment, d.lifecycle) == (
        0,
        "0.00",
        None,
        "prospect",
        "prospect",
    )
    assert d.p_alive is None and d.clv is None
    for s in (a, b, c):
        assert s.p_alive is None or 0 <= s.p_alive <= 1


def test_a_second_refresh_replaces_the_first(uow, world):
    first = refresh(uow, RefreshOptions(as_of=AS_OF))
    post_order(uow, member_id=world["D"], ordered_at=at("2026-06-30"), lines=line("80.00"))
    second = refresh(uow, RefreshOptions(as_of=AS_OF))
    scores = scores_of(uow)
    assert {s.run_id for s in scores.values()} == {second.id} != {first.id}
    assert (scores[world["D"]].orders, scores[world["D"]].segment) != (0, "prospect")
    assert len(scores) == 4


def test_a_failed_refresh_is_recorded_and_changes_no_score(uow, world, monkeypatch):
    done = refresh(uow, RefreshOptions(as_of=AS_OF))
    before = {k: (v.run_id, v.segment) for k, v in scores_of(uow).items()}

    def broken(*_args: Any, **_kw: Any) -> None:
        raise RuntimeError("the fit blew up")

    monkeypatch.setattr(refresh_module, "predict", broken)
    with pytest.raises(RuntimeError, match="blew up"):
        refresh(uow, RefreshOptions(as_of=AS_OF))
    assert {k: (v.run_id, v.segment) for k, v in scores_of(uow).items()} == before
    from omo.analytics.service import list_runs

    latest, previous = list_runs(uow, limit=2)
    assert (latest.status, latest.error) == ("failed", "RuntimeError: the fit blew up")
    assert "snapshot" in latest.timings and "write" not in latest.timings
    assert previous.id == done.id


def test_scores_segments_and_saved_rules_over_http(api, uow, world):
    refresh(uow, RefreshOptions(as_of=AS_OF))
    a = api.get(f"/api/v1/members/{world['A']}/scores")
    assert a.status_code == 200
    assert (a.json()["segment"], a.json()["spend"], a.json()["tags"]) == (
        "vip",
        "1350.00",
        ["omnichannel"],
    )
    assert api.get(f"/api/v1/members/{world['E']}/scores").status_code == 404  # merged away

    listed = {s["name"]: s for s in api.get("/api/v1/segments").json()}
    assert listed["vip"] == {
        "name": "vip",
        "rule": "r >= 4 and f >= 4 and m >= 4",
        "kind": "builtin",
        "members": 2,
    }
    assert sum(s["members"] for s in listed.values()) == 4

    counted = api.post("/api/v1/segments/count", json={"rule": "spend >= 500 or orders == 0"})
    assert counted.status_code == 200
    assert counted.json() == {
        "rule": "spend >= 500 or orders == 0", "fields": ["orders", "spend"], "members": 3, "share": 0.75,
    }  # fmt: skip
    bad = api.post("/api/v1/segments/count", json={"rule": "spend >= 500 or vip"})
    assert bad.status_code == 422
    assert "is not a comparison" in bad.text

    saved = api.post("/api/v1/segments", json={"name": "big-spenders", "rule": "spend >= 500"})
    assert saved.status_code == 201, saved.text
    assert saved.json()["members"] == 2
    assert (
        api.post("/api/v1/segments", json={"name": "big-spenders", "rule": "r > 1"}).status_code
        == 409
    )
    assert api.post("/api/v1/segments", json={"name": "vip", "rule": "r > 1"}).status_code == 409
    assert api.post("/api/v1/segments", json={"name": "x", "rule": "nope > 1"}).status_code == 422
    assert (
        api.post("/api/v1/segments", json={"name": "Bad Name", "rule": "r > 1"}).status_code == 422
    )

    page = api.get("/api/v1/segments/big-spenders/members", params={"limit": 1})
    assert page.json()["total"] == 2
    assert [m["member_id"] for m in page.json()["items"]] == [world["A"]]  # highest spend first
    lost = api.get("/api/v1/segments/lost/members").json()
    assert [m["member_id"] for m in lost["items"]] == [world["B"]]
    assert api.get("/api/v1/segments/nothing/members").status_code == 404

    exported = api.get("/api/v1/segments/big-spenders/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert sorted(int(r["member_id"]) for r in rows) == sorted([world["A"], world["C"]])
    assert {r["segment"] for r in rows} == {"vip"}

    assert api.delete("/api/v1/segments/big-spenders").status_code == 204
    assert api.delete("/api/v1/segments/big-spenders").status_code == 404
    assert "big-spenders" not in {s["name"] for s in api.get("/api/v1/segments").json()}

    runs = api.get("/api/v1/analytics/runs").json()
    assert runs[0]["status"] == "done" and runs[0]["segments"]["vip"] == 2
    assert api.get(f"/api/v1/analytics/runs/{runs[0]['id']}").json()["id"] == runs[0]["id"]
    assert api.get("/api/v1/analytics/runs/999999").status_code == 404
    assert api.get("/api/v1/analytics/at-risk").status_code == 200


def test_a_merge_after_the_refresh_hides_the_absorbed_members_scores(api, uow, world):
    refresh(uow, RefreshOptions(as_of=AS_OF))
    merge_use_case(uow, survivor_id=world["C"], absorbed_id=world["D"], note=None, actor="test")
    assert api.get(f"/api/v1/members/{world['D']}/scores").status_code == 404
    assert sum(s["members"] for s in api.get("/api/v1/segments").json()) == 3


def test_scopes_are_enforced(client, uow, world):
    from omo.apikeys.service import create_key

    key = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    client.headers["Authorization"] = f"Bearer {key}"
    assert client.get("/api/v1/segments").status_code == 403
    assert client.post("/api/v1/segments", json={"name": "x", "rule": "r > 1"}).status_code == 403
