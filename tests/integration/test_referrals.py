"""Referrals (SQLite + PostgreSQL): attribution at enrolment, both rewarded on the first
qualifying order, and the guards."""

from __future__ import annotations

from fastapi.testclient import TestClient

from omo.db import UnitOfWork
from omo.points import service as points
from omo.referrals import service as referrals
from tests.factories import enrol, post_order


def buy(uow: UnitOfWork, phone: str, amount: str) -> None:
    post_order(uow, customer=[{"kind": "phone", "value": phone}],
               lines=[{"sku": "S", "quantity": 1, "unit_price": amount}])  # fmt: skip


def test_both_sides_are_rewarded_once_on_the_first_qualifying_order(uow: UnitOfWork) -> None:
    alice = enrol(uow, phone="0912-000-001").member.id
    code = referrals.code_for(uow, member_id=alice).code
    assert referrals.code_for(uow, member_id=alice).code == code
    bob = enrol(uow, phone="0912-000-002", referral_code=code.lower()).member.id
    buy(uow, "0912-000-002", "100.00")  # below NT$300: not yet
    assert referrals.code_for(uow, member_id=alice).referred[0].status == "pending"
    buy(uow, "0912-000-002", "500.00")
    buy(uow, "0912-000-002", "900.00")
    brought = referrals.code_for(uow, member_id=alice).referred
    assert [(r.referee_id, r.status) for r in brought] == [(bob, "rewarded")]
    bonus = [h for h in points.summary(uow, member_id=alice).history if h.kind == "bonus"]
    assert [h.points for h in bonus] == [50]
    assert [h.points for h in points.summary(uow, member_id=bob).history if h.kind == "bonus"] == [
        50
    ]


def test_the_guards(api: TestClient, uow: UnitOfWork) -> None:
    alice = enrol(uow, phone="0912-000-001").member.id
    code = api.get(f"/api/v1/members/{alice}/referral").json()["code"]
    own = api.post(
        "/api/v1/members",
        json={"identifiers": [{"kind": "phone", "value": "0912-000-001"}], "referral_code": code},
    )
    assert own.status_code == 200  # an existing member: the code is ignored, not an error
    unknown = api.post(
        "/api/v1/members",
        json={
            "identifiers": [{"kind": "phone", "value": "0912-000-003"}],
            "referral_code": "RNOPE",
        },
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["type"] == "unknown_code"
    assert api.get("/api/v1/members/lookup", params={"phone": "0912000003"}).status_code == 404
    # a referee who turns out to be the referrer (merged before their first order) gets nothing
    bob = enrol(uow, phone="0912-000-002", referral_code=code).member.id
    merged = api.post(f"/api/v1/members/{alice}/merge", json={"other_member_id": bob})
    assert merged.status_code == 201
    buy(uow, "0912-000-002", "800.00")
    brought = api.get(f"/api/v1/members/{alice}/referral").json()["referred"]
    assert brought == [] or brought[0]["status"] in ("pending", "rejected")
