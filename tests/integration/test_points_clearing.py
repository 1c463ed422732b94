"""Points cleared between stores (SQLite + PostgreSQL): what each store's sales issued and its
till took in payment — at checkout and for rewards — net of returns and cancellations; the
totals agree with the ledger's roll-forward, computed apart."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from omo.apikeys.service import Principal, create_key
from omo.checkout import service as checkout
from omo.checkout.dayclose.clearing import clearing
from omo.checkout.refunds import RefundLine, RefundRequest, refund
from omo.checkout.schemas import CommitRequest
from omo.commerce import service as commerce
from omo.commerce.schemas import ProductUpsert
from omo.db import UnitOfWork
from omo.points import movements
from omo.points import service as points
from omo.points.rules import PointsRules
from omo.points.schemas import PointsChange
from omo.rewards import service as rewards
from omo.rewards.schemas import RewardIn, RewardRedeem
from omo.shared import clock
from omo.shared.errors import Forbidden, ValidationFailed
from tests.factories import ADMIN, enrol, post_order, store

TPE = ZoneInfo("Asia/Taipei")
ZONE = "Asia/Taipei"
COLUMNS = ("earned", "taken_back", "redeemed", "given_back")


def sell(uow: UnitOfWork, **body: Any) -> Any:
    req = CommitRequest.model_validate({"channel": "pos", **body})
    return checkout.commit(uow, req=req, principal=ADMIN, currency="TWD", region="TW")


@pytest.fixture
def chain(uow: UnitOfWork) -> dict[str, Any]:
    """November in Taipei: a member earns at TPE-101, pays with points at TPE-102 and buys a
    reward there, returns part of the first sale; a reward at TPE-101 cancelled; an order
    online."""
    now = [datetime(2026, 11, 2, 10, 0, tzinfo=TPE)]
    clock.set_clock(lambda: now[0])
    points.set_programme(uow, actor="t", rules=PointsRules(point_value=Decimal("0.5")))
    for code in ("TPE-101", "TPE-102"):
        store(uow, code)
    for sku, price in (("APP-1", "800"), ("BEA-1", "600")):
        commerce.save_product(uow, sku=sku,
                              data=ProductUpsert(name=sku, category="c", price=Decimal(price)))  # fmt: skip
    mid = enrol(uow, phone="0912-345-678").member.id
    points.adjust(uow, member_id=mid, actor="t",
                  change=PointsChange(points=1000, idempotency_key="seed", reason="seed"))  # fmt: skip
    for code, cost in (("TOTE", 100), ("MUG", 60)):
        rewards.put_reward(uow, code=code, data=RewardIn(name=code, points=cost), actor="t")
    earned = sell(uow, store="TPE-101", member_id=mid, external_id="A-1",
                  lines=[{"sku": "APP-1", "quantity": 2}, {"sku": "BEA-1", "quantity": 1}])  # fmt: skip
    now[0] = datetime(2026, 11, 5, 15, 0, tzinfo=TPE)
    paid = sell(uow, store="TPE-102", member_id=mid, external_id="B-1", points=200,
                lines=[{"sku": "BEA-1", "quantity": 1}])  # fmt: skip
    rewards.redeem(uow, member_id=mid, code="TOTE", actor="t",
                   req=RewardRedeem(idempotency_key="r-b", channel="pos", store="TPE-102"))  # fmt: skip
    rewards.redeem(uow, member_id=mid, code="MUG", actor="t",
                   req=RewardRedeem(idempotency_key="r-a", channel="pos", store="TPE-101"))  # fmt: skip
    now[0] = datetime(2026, 11, 20, 12, 0, tzinfo=TPE)
    rewards.cancel(uow, idempotency_key="r-a", actor="t")
    back = refund(uow, order_id=earned.order.id, actor="t",
                  req=RefundRequest(idempotency_key="ret", lines=[RefundLine(line_no=1, quantity=1)]))  # fmt: skip
    back_b = refund(uow, order_id=paid.order.id, actor="t", req=RefundRequest(idempotency_key="rb"))
    online = post_order(uow, member_id=mid, ordered_at=now[0].isoformat(),
                        lines=[{"sku": "X", "quantity": 1, "unit_price": "2000"}])  # fmt: skip
    assert online.id
    now[0] = datetime(2026, 12, 3, 9, 0, tzinfo=TPE)
    return {"A": earned, "B": paid, "back": back, "back_b": back_b}


def test_each_store_issues_and_takes_points_and_the_totals_meet_the_ledger(
    uow: UnitOfWork, chain: dict[str, Any]
) -> None:
    got = clearing(uow, start=date(2026, 11, 1), end=date(2026, 12, 1), time_zone=ZONE,
                   principal=ADMIN)  # fmt: skip
    rows = {r.store: r for r in got.stores}
    assert list(rows) == ["TPE-101", "TPE-102", None]
    a, b = rows["TPE-101"], rows["TPE-102"]
    assert (a.earned, a.taken_back) == (chain["A"].points_earned, chain["back"].points_taken_back)
    assert chain["back"].points_taken_back > 0
    assert (a.redeemed, a.given_back) == (60, 60)  # the mug, then its cancellation
    assert (b.redeemed, b.given_back) == (200 + 100, chain["back_b"].points_given_back)
    assert chain["back_b"].points_given_back == 200  # the whole B-1 returned: its points back
    assert b.earned == chain["B"].points_earned and b.taken_back == b.earned
    assert a.net == 0 - (a.earned - a.taken_back) and a.net < 0  # issued more than it took
    assert b.net == 100 and b.value == Decimal("50.00")  # the tote, at NT$0.5 a point
    assert rows[None].earned > 0 and rows[None].redeemed == 0  # the online order
    t = got.total
    assert {c: getattr(t, c) for c in COLUMNS} == {
        c: sum(getattr(r, c) for r in got.stores) for c in COLUMNS
    }
    # the ledger's roll-forward, computed apart, sees the same points for these causes
    roll = movements.movements(uow, start=date(2026, 11, 1), end=date(2026, 12, 1), by="month",
                               time_zone=ZONE).total  # fmt: skip
    assert (roll.earned, roll.taken_back) == (t.earned, t.taken_back)
    assert (roll.redeemed, roll.given_back) == (t.redeemed, t.given_back)
    # December has none of it
    quiet = clearing(uow, start=date(2026, 12, 1), end=date(2026, 12, 4), time_zone=ZONE,
                     principal=ADMIN)  # fmt: skip
    assert quiet.stores == [] and quiet.total.net == 0


def test_clearing_refusals_and_its_api(
    uow: UnitOfWork, api: TestClient, chain: dict[str, Any]
) -> None:
    with pytest.raises(ValidationFailed):
        clearing(uow, start=date(2026, 12, 1), end=date(2026, 11, 1), time_zone=ZONE,
                 principal=ADMIN)  # fmt: skip
    with pytest.raises(Forbidden):
        clearing(uow, start=date(2026, 11, 1), end=date(2026, 12, 1), time_zone=ZONE,
                 principal=Principal("till", store_id=1))  # fmt: skip
    r = api.get("/api/v1/points/clearing", params={"from": "2026-11-01", "to": "2026-12-01"})
    assert r.status_code == 200, r.text
    assert [s["store"] for s in r.json()["stores"]] == ["TPE-101", "TPE-102", None]
    assert r.json()["point_value"] == "0.50"
    for params, where in (
        ({"from": "2026-11-01", "to": "2027-01-01"}, "to"),
        ({"from": "2026-11-31", "to": "2026-12-01"}, "from"),
        ({"from": "2026-11-01"}, "to"),
    ):
        bad = api.get("/api/v1/points/clearing", params=params)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == where, bad.text
    till = create_key(uow, name="till", store_code="TPE-101", scopes=["kpis:read"]).key
    denied = api.get("/api/v1/points/clearing", params={"from": "2026-11-01", "to": "2026-12-01"},
                     headers={"Authorization": f"Bearer {till}"})  # fmt: skip
    assert denied.status_code == 403
