"""The programme's sign-up and review bonuses (PTS-1; SQLite + PostgreSQL): a member who joins
now gets the sign-up bonus once, an import or an update gets none; a review event earns the
review bonus once per member and product, for a product they bought, within a monthly cap;
history imported earns nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from omo.db import UnitOfWork
from omo.points import service as points
from omo.points.rules import PointsRules
from omo.shared import clock
from omo.transfer.importer import import_file
from tests.conftest import dump
from tests.factories import enrol, post_order

D0 = datetime(2026, 4, 30, 15, 0, tzinfo=UTC)  # 23:00 in Taipei
QUIET = {"spend_per_point": Decimal(1_000_000)}  # orders earn nothing here


def at(when: datetime) -> None:
    clock.set_clock(lambda: when)


def rules(uow: UnitOfWork, **kw: Any) -> None:
    points.set_programme(uow, rules=PointsRules(**{**QUIET, **kw}), actor="t")


def bonuses(uow: UnitOfWork, member_id: int) -> list[tuple[int, str | None]]:
    history = points.summary(uow, member_id=member_id).history
    return sorted((h.points, h.reason) for h in history if h.kind == "bonus")


def review(n: int, phone: str | None, sku: str | None = "SKU-1", **kw: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"rev-{n}", "kind": "review", "channel": "web",
        "occurred_at": clock.now().isoformat(), **kw,
    }  # fmt: skip
    if phone:
        event["identifiers"] = [{"kind": "phone", "value": phone}]
    if sku:
        event["sku"] = sku
    return event


def test_a_member_who_joins_now_gets_the_signup_bonus_once(
    api: TestClient, uow: UnitOfWork
) -> None:
    at(D0)
    rules(uow, signup_bonus=100)
    joined = api.post(
        "/api/v1/members", json={"identifiers": [{"kind": "phone", "value": "0912-000-001"}]}
    )
    assert joined.status_code == 201, joined.text
    mid = joined.json()["member"]["id"]
    assert bonuses(uow, mid) == [(100, "sign-up bonus")]
    assert points.summary(uow, member_id=mid).available == 100  # spendable at once
    # the same person again (an update), and a member recorded as having joined before: nothing
    again = api.post(
        "/api/v1/members",
        json={"identifiers": [{"kind": "phone", "value": "0912-000-001"}], "name": "王"},
    )
    assert again.status_code == 200 and bonuses(uow, mid) == [(100, "sign-up bonus")]
    earlier = api.post("/api/v1/members", json={
        "identifiers": [{"kind": "phone", "value": "0912-000-002"}],
        "joined_at": "2020-01-01T00:00:00Z"}).json()["member"]["id"]  # fmt: skip
    assert bonuses(uow, earlier) == []


def test_no_signup_bonus_for_an_import_or_when_the_programme_has_none(
    uow: UnitOfWork, tmp_path: Path
) -> None:
    at(D0)
    assert bonuses(uow, enrol(uow, phone="0912-000-003").member.id) == []  # default: none
    rules(uow, signup_bonus=100)
    members_csv = tmp_path / "members.csv"
    members_csv.write_text("phone,name\n0912-000-004,林\n", encoding="utf-8")
    report = import_file(uow, kind="members", path=members_csv)
    assert report.created == 1
    imported = enrol(uow, phone="0912-000-004").member.id  # found, not created
    assert bonuses(uow, imported) == []


def test_a_review_earns_once_per_product_for_what_the_member_bought(
    api: TestClient, uow: UnitOfWork
) -> None:
    at(D0)
    rules(uow, review_bonus=20)
    mid = enrol(uow, phone="0912-000-001").member.id
    post_order(uow, customer=[{"kind": "phone", "value": "0912-000-001"}],
               ordered_at=(D0 - timedelta(days=3)).isoformat(),
               lines=[{"sku": "SKU-1", "quantity": 1, "unit_price": "100"},
                      {"sku": "SKU-2", "quantity": 1, "unit_price": "100"}])  # fmt: skip
    batch = [review(1, "0912-000-001"), review(2, "0912-000-001"),  # the same product twice
             review(3, "0912-000-001", sku="NEVER-BOUGHT"), review(4, "0912-000-001", sku=None),
             review(5, None), review(6, "0912-000-999")]  # fmt: skip
    got = api.post("/api/v1/events", json={"events": batch})
    assert got.status_code == 200, got.text
    assert got.json()["accepted"] == 6
    assert bonuses(uow, mid) == [(20, "review of SKU-1")]
    before = dump(uow.engine)
    replay = api.post(
        "/api/v1/events", json={"events": [review(1, "0912-000-001"), review(7, "0912-000-001")]}
    )
    assert replay.json()["accepted"] == 1 and dump(uow.engine) != before  # the event, no bonus
    assert bonuses(uow, mid) == [(20, "review of SKU-1")]
    api.post("/api/v1/events", json={"events": [review(8, "0912-000-001", sku="SKU-2")]})
    assert bonuses(uow, mid) == [(20, "review of SKU-1"), (20, "review of SKU-2")]
    # a programme that rewards any review: a review with no product counts once per review
    rules(uow, review_bonus=20, review_needs_purchase=False)
    api.post(
        "/api/v1/events",
        json={
            "events": [
                review(9, "0912-000-001", sku=None),
                review(10, "0912-000-001", sku="NEVER-BOUGHT"),
            ]
        },
    )
    assert len(bonuses(uow, mid)) == 4
    bad = api.post(
        "/api/v1/events", json={"events": [{**review(11, "0912-000-001"), "kind": "reveiw"}]}
    )
    assert bad.status_code == 422


def test_one_person_with_two_records_earns_one_review_bonus_per_product(
    api: TestClient, uow: UnitOfWork
) -> None:
    at(D0)
    rules(uow, review_bonus=20, review_needs_purchase=False)
    mid, alias = (
        enrol(uow, phone="0912-000-001").member.id,
        enrol(uow, phone="0912-000-009").member.id,
    )
    api.post("/api/v1/events", json={"events": [review(1, "0912-000-009")]})
    assert (
        api.post(f"/api/v1/members/{mid}/merge", json={"other_member_id": alias}).status_code == 201
    )
    api.post(
        "/api/v1/events",
        json={"events": [review(2, "0912-000-001"), review(3, "0912-000-001", sku="SKU-2")]},
    )
    assert bonuses(uow, mid) == [(20, "review of SKU-1"), (20, "review of SKU-2")]


def test_review_bonuses_stop_at_the_monthly_cap(api: TestClient, uow: UnitOfWork) -> None:
    at(D0)  # the last hour of April in Taipei
    rules(uow, review_bonus=20, review_needs_purchase=False, reviews_per_month=2)
    mid = enrol(uow, phone="0912-000-001").member.id
    api.post(
        "/api/v1/events",
        json={"events": [review(n, "0912-000-001", sku=f"S-{n}") for n in range(4)]},
    )
    assert len(bonuses(uow, mid)) == 2
    at(D0 + timedelta(hours=1, minutes=1))  # May in Taipei
    api.post(
        "/api/v1/events",
        json={"events": [review(n, "0912-000-001", sku=f"S-{n}") for n in range(4, 7)]},
    )
    assert len(bonuses(uow, mid)) == 4


def test_imported_reviews_earn_nothing(uow: UnitOfWork, tmp_path: Path) -> None:
    at(D0)
    rules(uow, review_bonus=20, review_needs_purchase=False)
    mid = enrol(uow, phone="0912-000-001").member.id
    events_csv = tmp_path / "events.csv"
    events_csv.write_text(
        "event_id,kind,occurred_at,channel,phone,sku\n"
        "old-1,review,2026-04-01 10:00,web,0912-000-001,SKU-1\n",
        encoding="utf-8",
    )
    assert import_file(uow, kind="events", path=events_csv).created == 1
    assert bonuses(uow, mid) == []


def test_reviews_at_once_keep_to_the_cap(uow: UnitOfWork, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    from omo.apikeys.service import Principal
    from omo.events.schemas import EventIn
    from omo.ingest import service as ingest

    at(D0)
    rules(uow, review_bonus=20, review_needs_purchase=False, reviews_per_month=3)
    mid = enrol(uow, phone="0912-000-001").member.id
    gate = threading.Barrier(10)
    errors: list[BaseException] = []

    def post(n: int) -> None:
        gate.wait()
        try:
            batch = [EventIn.model_validate(review(100 + n, "0912-000-001", sku=f"S-{n}"))]
            ingest.record_events(uow, batch=batch, principal=Principal("t"), region="TW")
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(bonuses(uow, mid)) == 3
