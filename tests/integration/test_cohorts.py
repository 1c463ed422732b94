"""Cohorts and purchase cycles through `omo refresh` and the API (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from omo.analytics.refresh import RefreshOptions, refresh
from omo.db import UnitOfWork
from omo.shared import clock
from tests.factories import enrol, post_order

AS_OF = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


def joins(uow: UnitOfWork, day: str, phone: str) -> int:
    when = datetime.fromisoformat(f"{day}T02:00:00+00:00")
    clock.set_clock(lambda: when)
    try:
        return enrol(uow, phone=phone).member.id
    finally:
        clock.reset_clock()


def test_cohorts_and_cycles_after_a_refresh(api: Any, uow: UnitOfWork) -> None:
    a = joins(uow, "2026-01-15", "0911-000-001")
    b = joins(uow, "2026-02-10", "0911-000-002")
    joins(uow, "2026-02-10", "0911-000-003")
    post_order(uow, member_id=a, ordered_at="2026-01-20T02:00:00+00:00")
    post_order(uow, member_id=a, ordered_at="2026-03-01T02:00:00+00:00")
    post_order(uow, member_id=b, ordered_at="2026-02-12T02:00:00+00:00")
    assert api.get("/api/v1/analytics/cohorts").json() == []  # nothing before a refresh
    refresh(uow, RefreshOptions(as_of=AS_OF))
    got = api.get("/api/v1/analytics/cohorts")
    assert got.status_code == 200, got.text
    assert got.json() == [
        {"cohort": "2026-01", "size": 1, "months": [
            {"months_since": 0, "active": 1, "rate": 1.0},
            {"months_since": 1, "active": 0, "rate": 0.0},
            {"months_since": 2, "active": 1, "rate": 1.0}]},
        {"cohort": "2026-02", "size": 2, "months": [
            {"months_since": 0, "active": 1, "rate": 0.5},
            {"months_since": 1, "active": 0, "rate": 0.0}]},
    ]  # fmt: skip
    later = api.get("/api/v1/analytics/cohorts", params={"first": "2026-02"}).json()
    assert [c["cohort"] for c in later] == ["2026-02"]
    # A bought on 20 January and 1 March: one cycle of 40 days; B bought once
    assert api.get(f"/api/v1/members/{a}/scores").json()["cycle_days"] == 40.0
    assert api.get(f"/api/v1/members/{b}/scores").json()["cycle_days"] is None
    count = api.post("/api/v1/segments/count", json={"rule": "cycle_days < 60"})
    assert count.status_code == 200 and count.json()["members"] == 1


def test_a_bad_cohort_month_is_refused(api: Any) -> None:
    for bad in ("2026-13", "26-01", "2026-1", "yesterday"):
        got = api.get("/api/v1/analytics/cohorts", params={"first": bad})
        assert got.status_code == 422, bad
    assert "YYYY-MM" in api.get("/api/v1/analytics/cohorts?first=2026-13").text
