"""A till's queued sales in one request (SQLite + PostgreSQL): each recorded as a single commit
would be, in its own transaction and in order; refusals answered per sale with the single
commit's detail; the batch sent again changes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from omo.apikeys.service import create_key
from omo.checkout import batch
from omo.checkout.batch import SalesBatch
from omo.commerce import service as commerce
from omo.commerce.schemas import ProductUpsert
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork
from omo.points import service as points
from omo.points.schemas import PointsChange
from tests.conftest import dump
from tests.factories import ADMIN, enrol, store
from tests.integration.test_checkout import basket


@pytest.fixture
def shop(uow: UnitOfWork) -> dict[str, Any]:
    """TPE-101 with two products; a member with 500 points and a 滿1000減100 coupon."""
    store(uow, "TPE-101")
    for sku, price in (("APP-1", "800"), ("BEA-1", "600")):
        commerce.save_product(uow, sku=sku,
                              data=ProductUpsert(name=sku, category="c", price=Decimal(price)))  # fmt: skip
    mid = enrol(uow, phone="0912-345-678").member.id
    points.adjust(uow, member_id=mid, actor="t",
                  change=PointsChange(points=500, idempotency_key="seed", reason="seed"))  # fmt: skip
    coupons.put_template(uow, code="C100", template=CouponTemplate(
        name="滿1000減100", kind="spend_get_off", spend=Decimal(1000), amount=Decimal(100)))  # fmt: skip
    code = coupons.issue(uow, template_code="C100", member_ids=[mid], key="k").issued[0].code
    return {"member": mid, "code": code}


def queue(shop: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        basket(member_id=shop["member"], coupon_codes=[shop["code"]], points=100,
               external_id="Q-1", ordered_at="2026-12-06T10:00:00+08:00"),
        basket(external_id="Q-2", ordered_at="2026-12-06T10:05:00+08:00"),
        # the coupon is used by Q-1 above: refused, and the rest goes on
        basket(member_id=shop["member"], coupon_codes=[shop["code"]], external_id="Q-3"),
        basket(store="NOPE-1", external_id="Q-4"),
        basket(external_id="Q-1", lines=[{"sku": "BEA-1", "quantity": 3}]),  # Q-1, other content
        basket(external_id="Q-5"),
    ]  # fmt: skip


def test_a_queue_of_sales_is_recorded_one_by_one_and_again_changes_nothing(
    uow: UnitOfWork, shop: dict[str, Any]
) -> None:
    body = SalesBatch.model_validate({"sales": queue(shop)})
    got = batch.commit_batch(uow, batch=body, principal=ADMIN, currency="TWD", region="TW")
    assert [(i.external_id, i.status) for i in got.items] == [
        ("Q-1", 201), ("Q-2", 201), ("Q-3", 422), ("Q-4", 404), ("Q-1", 409), ("Q-5", 201),
    ]  # fmt: skip
    assert (got.recorded, got.replayed, got.refused) == (3, 0, 3)
    first = got.items[0].result
    assert first is not None and first.price is not None and first.price.points_redeemed == 100
    refused = got.items[2].detail
    assert refused is not None and refused[0]["loc"][:3] == ["body", "sales", 2]
    assert refused[0]["type"] == "already_used"
    assert got.items[3].detail and got.items[3].detail[0]["loc"] == ["body", "sales", 3, "store"]
    assert coupons.get_coupon(uow, code=shop["code"]).uses == 1
    before = dump(uow.engine)
    again = batch.commit_batch(uow, batch=body, principal=ADMIN, currency="TWD", region="TW")
    assert [i.status for i in again.items] == [200, 200, 422, 404, 409, 200]
    replayed = again.items[0].result
    assert replayed is not None and replayed.replayed
    assert (replayed.order.id, replayed.order.total, replayed.points_earned) == (
        first.order.id, first.order.total, first.points_earned,
    )  # fmt: skip
    assert dump(uow.engine) == before


def test_the_batch_api_keeps_each_sales_scope_and_store(
    uow: UnitOfWork, api: TestClient, shop: dict[str, Any]
) -> None:
    store(uow, "TPE-102")
    till = create_key(uow, name="till-101", store_code="TPE-101", scopes=["orders:write"]).key
    sales = [basket(external_id="B-1"),
             basket(member_id=shop["member"], points=100, external_id="B-2"),  # no points:write
             basket(store="TPE-102", external_id="B-3")]  # another store's  # fmt: skip
    r = api.post("/api/v1/checkout/commit-batch", json={"sales": sales},
                 headers={"Authorization": f"Bearer {till}"})  # fmt: skip
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["status"] for i in items] == [201, 403, 403]
    assert [i["detail"][0]["type"] for i in items[1:]] == ["missing_scope", "wrong_store"]
    assert items[0]["result"]["order"]["external_id"] == "B-1"
    before = dump(uow.engine)
    for body, where in (
        ({"sales": []}, "sales"),
        ({"sales": [basket(external_id="X")] * 501}, "sales"),
        ({"sales": [basket(external_id="X", points=-1)]}, "points"),
        ({"sales": [basket()]}, "external_id"),
        ({"sales": [basket(external_id="X")], "extra": 1}, "extra"),
    ):
        bad = api.post("/api/v1/checkout/commit-batch", json=body)
        assert bad.status_code == 422, (where, bad.text)
        assert bad.json()["detail"][0]["loc"][-1] == where, bad.text
    assert dump(uow.engine) == before
    reader = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    denied = api.post("/api/v1/checkout/commit-batch", json={"sales": sales},
                      headers={"Authorization": f"Bearer {reader}"})  # fmt: skip
    assert denied.status_code == 403


@pytest.mark.postgres
def test_two_tills_sending_one_queue_at_once_record_each_sale_once(
    uow: UnitOfWork, shop: dict[str, Any], db_url: str
) -> None:
    """A till that timed out and sent its queue again while the first request still ran: the
    two batches race sale by sale on PostgreSQL; each sale is recorded once, each answer says
    201 or 200 with the same order, and no lock error reaches either till."""
    import threading

    from sqlalchemy import func, select

    from omo.commerce.models import Order

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    sales = [basket(member_id=shop["member"], external_id=f"Q-{n}", points=10 if n % 3 else 0)
             for n in range(24)]  # fmt: skip
    body = SalesBatch.model_validate({"sales": sales})
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def till() -> None:
        barrier.wait()
        answers.append(batch.commit_batch(uow, batch=body, principal=ADMIN, currency="TWD",
                                          region="TW"))  # fmt: skip

    threads = [threading.Thread(target=till) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 2, "a till got an error"
    for n in range(24):
        first, second = (a.items[n] for a in answers)
        assert {first.status, second.status} == {201, 200}, (n, first, second)
        assert first.result and second.result
        assert first.result.order.id == second.result.order.id
    with uow.read() as s:
        assert s.scalar(select(func.count()).select_from(Order).where(
            Order.external_id.like("Q-%"))) == 24  # fmt: skip
        assert points.check_ledger(s) == []
