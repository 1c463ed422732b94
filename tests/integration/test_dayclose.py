"""A store's day (日結) and the till's receipts reconciled against it (SQLite + PostgreSQL): sales
of the brand's calendar day, discounts, points, coupons, refunds; receipts missing, recorded
elsewhere, differing or unlisted — and nothing written by asking."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from omo.apikeys.service import Principal, create_key
from omo.checkout import dayclose
from omo.checkout import service as checkout
from omo.checkout.dayclose import TillJournal
from omo.checkout.refunds import RefundLine, RefundRequest, refund
from omo.checkout.schemas import CommitRequest, CommitResult
from omo.commerce import service as commerce
from omo.commerce.schemas import ProductUpsert
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork
from omo.points import service as points
from omo.points.schemas import PointsChange
from omo.shared import clock
from omo.shared.errors import Forbidden, NotFound, ValidationFailed
from tests.conftest import dump
from tests.factories import ADMIN, enrol, post_order, store

TPE = ZoneInfo("Asia/Taipei")
ZONE = "Asia/Taipei"
PHONE = "0912-345-678"
DAY = date(2026, 12, 6)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=TPE)


class Moment:
    def __init__(self) -> None:
        self.now = at(6, 9)
        clock.set_clock(lambda: self.now)


def sell(uow: UnitOfWork, external_id: str, **kw: Any) -> CommitResult:
    body = {"channel": "pos", "store": "TPE-101", "external_id": external_id, **kw}
    req = CommitRequest.model_validate(body)
    return checkout.commit(uow, req=req, principal=ADMIN, currency="TWD", region="TW")


@pytest.fixture
def day(uow: UnitOfWork) -> dict[str, Any]:
    """Sales at TPE-101 through 2026-12-06 (Taipei) and around it, as the module doc says."""
    m = Moment()
    store(uow, "TPE-101")
    store(uow, "TPE-102")
    for sku, cat, price in (("APP-1", "服飾", "800"), ("BEA-1", "美妝保養", "600")):
        commerce.save_product(
            uow, sku=sku, data=ProductUpsert(name=sku, category=cat, price=Decimal(price))
        )
    mid = enrol(uow, phone=PHONE).member.id
    post_order(uow, customer=[{"kind": "phone", "value": PHONE}],
               lines=[{"sku": "OLD", "quantity": 1, "unit_price": "12000"}])  # silver  # fmt: skip
    points.adjust(
        uow, member_id=mid, change=PointsChange(points=500, idempotency_key="seed", reason="seed"),
        actor="t",
    )  # fmt: skip
    coupons.put_template(
        uow, code="C100",
        template=CouponTemplate(name="滿1000減100", kind="spend_get_off", spend=Decimal(1000),
                                amount=Decimal(100)),
    )  # fmt: skip
    code = coupons.issue(uow, template_code="C100", member_ids=[mid], key="k").issued[0].code
    both = [{"sku": "APP-1", "quantity": 1}, {"sku": "BEA-1", "quantity": 1}]
    m.now = at(6, 10)
    member_sale = sell(uow, "POS-1", member_id=mid, lines=both, coupon_codes=[code], points=200)
    m.now = at(6, 12)
    guest_sale = sell(uow, "POS-2", lines=[{"sku": "APP-1", "quantity": 2}])
    m.now = at(6, 13)
    sell(uow, "POS-3", store="TPE-102", lines=[{"sku": "BEA-1", "quantity": 1}])
    m.now = at(6, 14)
    post_order(uow, channel="web", external_id="W-PICK-1", store="TPE-101",
               fulfilment="store_pickup", ordered_at=m.now.isoformat(),
               lines=[{"sku": "BEA-1", "quantity": 1, "unit_price": "500"}])  # fmt: skip
    m.now = at(6, 15)
    post_order(uow, channel="pos", external_id="POS-C", store="TPE-101", status="cancelled",
               ordered_at=m.now.isoformat(),
               lines=[{"sku": "BEA-1", "quantity": 1, "unit_price": "300"}])  # fmt: skip
    m.now = at(6, 20)
    refund(uow, order_id=guest_sale.order.id, actor="till",
           req=RefundRequest(idempotency_key="r-2", lines=[RefundLine(line_no=1, quantity=1)]))  # fmt: skip
    m.now = at(6, 23, 50)  # 15:50 UTC: still the 6th in Taipei
    sell(uow, "POS-4", lines=[{"sku": "BEA-1", "quantity": 1}])
    m.now = at(7, 0, 10)  # 16:10 UTC on the 6th, but the 7th in Taipei
    sell(uow, "POS-5", lines=[{"sku": "APP-1", "quantity": 1}])
    m.now = at(7, 9)
    return {"moment": m, "member": mid, "sale": member_sale}


def test_a_store_day_adds_up_the_brands_calendar_day(uow: UnitOfWork, day: dict[str, Any]) -> None:
    sale: CommitResult = day["sale"]
    assert sale.price is not None
    assert (sale.order.total, sale.order.discount_total) == (Decimal(1030), Decimal(300))
    report = dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)
    assert (report.since.isoformat(), report.until.isoformat()) == (
        "2026-12-05T16:00:00+00:00", "2026-12-06T16:00:00+00:00",
    )  # fmt: skip
    assert report.complete
    s = report.sales
    # POS-1 (the member's), POS-2, the web pick-up and POS-4 at 23:50; not POS-3 (TPE-102),
    # not POS-C (cancelled), not POS-5 (00:10 on the 7th, though the 6th in UTC)
    assert (s.orders, s.member_orders, s.guest_orders, s.cancelled) == (4, 1, 3, 1)
    assert s.items == 2 + 2 + 1 + 1
    assert s.list_value == Decimal(1400 + 1600 + 500 + 600)
    assert s.line_discounts == sale.price.tier_discount > 0  # the member's level
    assert (s.order_discounts, s.coupon_discounts) == (Decimal(300), Decimal(100))
    assert (s.points_redeemed, s.points_earned) == (200, sale.points_earned)
    assert sale.points_earned > 0
    assert s.total == Decimal(1030 + 1600 + 500 + 600)
    assert [(c.channel, c.orders, c.total) for c in s.by_channel] == [
        ("pos", 3, Decimal(1030 + 1600 + 600)), ("web", 1, Decimal(500)),
    ]  # fmt: skip
    r = report.refunds
    assert (r.count, r.amount, r.points_taken_back, r.points_given_back) == (1, Decimal(800), 0, 0)
    assert report.net == s.total - Decimal(800)
    assert [(c.template, c.name, c.used, c.discount, c.given_back) for c in report.coupons] == [
        ("C100", "滿1000減100", 1, Decimal(100), 0)
    ]
    # the till's numbers: POS-1, POS-2 and POS-4 here (POS-C has none): POS-3 went to TPE-102
    assert [(g.first, g.last, g.recorded, g.missing) for g in report.receipt_gaps] == [
        ("POS-1", "POS-4", 3, ["POS-3"])
    ]
    # the 7th has begun: POS-5 alone, and the day is not over
    seventh = dayclose.store_day(
        uow, store="TPE-101", day=date(2026, 12, 7), time_zone=ZONE, principal=ADMIN
    )
    assert not seventh.complete
    assert (seventh.sales.orders, seventh.sales.total) == (1, Decimal(800))
    # another zone draws another day: the 6th in UTC runs to 08:00 on the 7th in Taipei
    utc = dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone="UTC", principal=ADMIN)
    assert (utc.sales.orders, utc.sales.total) == (5, s.total + Decimal(800))  # POS-5 too


def test_a_refund_on_the_day_counts_its_points_and_a_whole_one_gives_the_coupon_back(
    uow: UnitOfWork, day: dict[str, Any]
) -> None:
    day["moment"].now = at(7, 11)
    done = refund(uow, order_id=day["sale"].order.id, actor="till",
                  req=RefundRequest(idempotency_key="r-1"))  # fmt: skip
    seventh = dayclose.store_day(
        uow, store="TPE-101", day=date(2026, 12, 7), time_zone=ZONE, principal=ADMIN
    )
    r = seventh.refunds
    assert (r.count, r.amount) == (1, Decimal(1030))
    assert (r.points_taken_back, r.points_given_back) == (
        done.points_taken_back, done.points_given_back,
    )  # fmt: skip
    assert (r.points_taken_back, r.points_given_back) == (day["sale"].points_earned, 200)
    assert seventh.net == Decimal(800 - 1030)
    # the 6th still shows the sale as it was made, and that its coupon has since come back
    sixth = dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)
    assert sixth.sales.total == Decimal(1030 + 1600 + 500 + 600)
    assert [(c.used, c.given_back) for c in sixth.coupons] == [(1, 1)]


def test_a_return_taken_at_another_store_is_in_that_tills_day(
    uow: UnitOfWork, api: TestClient, day: dict[str, Any]
) -> None:
    """跨店退貨: goods bought at TPE-101 (and online, delivered) brought back to TPE-102, whose
    till pays: TPE-102's day holds the money, TPE-101's says its sale was refunded elsewhere."""
    from omo.commerce.models import Store
    from omo.messaging.models import OutboxMessage

    m = day["moment"]
    m.now = at(6, 18)
    online = post_order(uow, channel="web", external_id="W-HOME-2", ordered_at=m.now.isoformat(),
                        lines=[{"sku": "BEA-1", "quantity": 1, "unit_price": "250"}])  # fmt: skip
    guest = _order(uow, "POS-2")
    m.now = at(7, 11)
    till = create_key(uow, name="till-102", store_code="TPE-102", scopes=["orders:write"]).key
    as_till = {"Authorization": f"Bearer {till}"}
    url = f"/api/v1/orders/{guest.id}/refund"
    before = dump(uow.engine)
    for body, status, kind in (
        ({"idempotency_key": "x-1", "store": "TPE-101"}, 403, "wrong_store"),  # not its till
        ({"idempotency_key": "x-1", "store": "TPE-999"}, 404, "not_found"),
    ):
        r = api.post(url, json=body, headers=as_till)
        assert r.status_code == status and r.json()["detail"][0]["type"] == kind, r.text
    assert api.post(url, json={"idempotency_key": "x-1", "store": "TPE-999"}).status_code == 404
    assert dump(uow.engine) == before
    back = api.post(url, json={"idempotency_key": "x-102"}, headers=as_till)
    assert back.status_code == 200 and back.json()["store"] == "TPE-102", back.text
    assert back.json()["amount"] == "800.00"  # the other of the two
    again = api.post(url, json={"idempotency_key": "x-102"}, headers=as_till)
    assert again.json()["order"]["replayed"] and again.json()["store"] == "TPE-102"
    moved = api.post(url, json={"idempotency_key": "x-102", "store": "TPE-101"})
    assert moved.status_code == 409, moved.text  # the same refund, said to be at another till
    web = api.post(f"/api/v1/orders/{online.id}/refund", json={"idempotency_key": "x-web"},
                   headers=as_till)  # fmt: skip
    assert web.status_code == 200 and web.json()["store"] == "TPE-102", web.text

    there = dayclose.store_day(uow, store="TPE-102", day=date(2026, 12, 7), time_zone=ZONE,
                               principal=ADMIN).refunds  # fmt: skip
    assert (there.count, there.amount) == (2, Decimal(800 + 250))
    assert (there.for_other_stores, there.for_other_stores_amount) == (2, Decimal(1050))
    assert (there.given_elsewhere, there.given_elsewhere_amount) == (0, Decimal(0))
    listed = dayclose.store_day(uow, store="TPE-102", day=date(2026, 12, 7), time_zone=ZONE,
                                principal=ADMIN).refunds_given  # fmt: skip
    assert [(g.external_id, g.channel, g.sold_at, g.sold_on, g.amount, g.whole, g.actor)
            for g in listed] == [
        ("POS-2", "pos", "TPE-101", DAY, Decimal(800), True, "till-102"),
        ("W-HOME-2", "web", None, DAY, Decimal(250), True, "till-102"),
    ]  # fmt: skip
    home = dayclose.store_day(uow, store="TPE-101", day=date(2026, 12, 7), time_zone=ZONE,
                              principal=ADMIN)  # fmt: skip
    assert (home.refunds.count, home.refunds.amount, home.refunds.for_other_stores) == (0, 0, 0)
    assert (home.refunds.given_elsewhere, home.refunds.given_elsewhere_amount) == (1, 800)
    assert home.refunds_given == []
    assert home.net == home.sales.total  # TPE-101's till paid nothing out
    # the 6th's refund at TPE-101's own till (made with no store named) is its own
    sixth = dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)
    assert (sixth.refunds.count, sixth.refunds.for_other_stores) == (1, 0)
    lines = {x.store: x for x in dayclose.stores_day(
        uow, day=date(2026, 12, 7), time_zone=ZONE, principal=ADMIN
    ).stores}  # fmt: skip
    assert (lines["TPE-102"].refunds, lines["TPE-102"].refunded) == (2, Decimal(1050))
    assert lines["TPE-101"].refunds == 0 and (None not in lines or lines[None].refunds == 0)
    # 跨店退貨清算: what each selling store owes each refunding one over a period
    owed = api.get("/api/v1/refunds/clearing", params={"from": "2026-12-01", "to": "2026-12-08"})
    assert owed.status_code == 200, owed.text
    assert [(p["sold_at"], p["refunded_at"], p["refunds"], p["amount"])
            for p in owed.json()["pairs"]] == [
        ("TPE-101", "TPE-102", 1, "800.00"), (None, "TPE-102", 1, "250.00"),
    ]  # fmt: skip
    assert (owed.json()["refunds"], owed.json()["amount"]) == (2, "1050.00")  # not r-2: at home
    none = api.get("/api/v1/refunds/clearing", params={"from": "2026-12-01", "to": "2026-12-07"})
    assert none.json()["pairs"] == []  # the 7th's refunds are after the range
    assert api.get("/api/v1/refunds/clearing", params={"from": "2026-12-01", "to": "2026-12-08"},
                   headers=as_till).status_code == 403  # fmt: skip
    backwards = api.get(
        "/api/v1/refunds/clearing", params={"from": "2026-12-08", "to": "2026-12-01"}
    )
    assert backwards.status_code == 422
    detail = api.get(f"/api/v1/orders/{guest.id}").json()
    assert [(x["idempotency_key"], x["store"]) for x in detail["refunds"]] == [
        ("r-2", "TPE-101"), ("x-102", "TPE-102"),
    ]  # fmt: skip
    with uow.read() as s:
        facts = s.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.topic == "OrderRefunded")
        ).all()
        tpe102 = s.scalar(select(Store.id).where(Store.code == "TPE-102"))
    assert [f["store_id"] for f in facts if f["order_id"] == online.id] == [tpe102]


def _order(uow: UnitOfWork, external_id: str) -> Any:
    from omo.commerce.models import Order

    with uow.read() as s:
        order = s.scalar(select(Order).where(Order.external_id == external_id))
        assert order is not None
        s.expunge(order)
        return order


def test_a_closed_day_keeps_its_figures_and_says_what_came_late(
    uow: UnitOfWork, api: TestClient, day: dict[str, Any]
) -> None:
    """日結確認: once the 6th is over TPE-101 closes it; a sale of the 6th an offline till
    sends on the 7th is recorded all the same, and the day says what changed since."""
    from omo.messaging.models import OutboxMessage

    def closed_facts() -> list[dict[str, Any]]:
        with uow.read() as s:
            return list(s.scalars(select(OutboxMessage.payload).where(
                OutboxMessage.topic == "StoreDayClosed")))  # fmt: skip

    other = create_key(uow, name="till-102", store_code="TPE-102", scopes=["orders:write"]).key
    as_102 = {"Authorization": f"Bearer {other}"}
    before = dump(uow.engine)
    early = api.post("/api/v1/stores/TPE-101/days/2026-12-07/close")  # 09:00 on the 7th
    assert early.status_code == 422 and early.json()["detail"][0]["type"] == "day_not_over"
    assert early.json()["detail"][0]["loc"] == ["path", "day"]
    ahead = api.get("/api/v1/stores/TPE-101/days/2026-12-08")
    assert ahead.status_code == 422 and ahead.json()["detail"][0]["loc"] == ["path", "day"]
    assert api.post("/api/v1/stores/TPE-999/days/2026-12-06/close").status_code == 404
    assert api.post("/api/v1/stores/TPE-101/days/1999-12-31/close").status_code == 422
    denied = api.post("/api/v1/stores/TPE-101/days/2026-12-06/close", headers=as_102)
    assert denied.status_code == 403 and denied.json()["detail"][0]["type"] == "wrong_store"
    assert dump(uow.engine) == before
    report = dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)
    assert report.closing is None

    r = api.post("/api/v1/stores/TPE-101/days/2026-12-06/close")
    assert r.status_code == 201, r.text
    closed = r.json()
    then = closed["at_closing"]
    assert (then["orders"], then["total"], then["refunds"], then["net"]) == (
        report.sales.orders, f"{report.sales.total:.2f}", report.refunds.count,
        f"{report.net:.2f}",
    )  # fmt: skip
    assert (then["points_earned"], then["points_redeemed"]) == (
        report.sales.points_earned, report.sales.points_redeemed,
    )  # fmt: skip
    assert all(v in (0, "0.00") for v in closed["since"].values())
    assert closed["recorded_after"] == [] and not closed["replayed"]
    [fact] = closed_facts()
    assert (fact["store"], fact["day"], fact["total"], fact["net"]) == (
        "TPE-101", "2026-12-06", then["total"], then["net"],
    )  # fmt: skip
    again = api.post("/api/v1/stores/TPE-101/days/2026-12-06/close")
    assert again.status_code == 200 and again.json()["replayed"]
    assert again.json()["closed_at"] == closed["closed_at"] and len(closed_facts()) == 1

    # an offline till's sale of the 6th at 22:00, sent at 10:00 on the 7th
    day["moment"].now = at(7, 10)
    late = sell(uow, "POS-6", ordered_at=at(6, 22).isoformat(),
                lines=[{"sku": "BEA-1", "quantity": 1}])  # fmt: skip
    now = dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)
    c = now.closing
    assert c is not None and c.at_closing.total == report.sales.total  # kept as it was
    assert (c.since.orders, c.since.total, c.since.net) == (1, Decimal(600), Decimal(600))
    assert now.sales.total == report.sales.total + 600
    assert [(x.external_id, x.total, x.recorded_at) for x in c.recorded_after] == [
        ("POS-6", Decimal(600), at(7, 10))
    ]
    assert c.recorded_after[0].order_id == late.order.id
    # a till closes its own store's day
    own = api.post("/api/v1/stores/TPE-102/days/2026-12-06/close", headers=as_102)
    assert own.status_code == 201 and own.json()["closed_by"] == "till-102"
    assert len(closed_facts()) == 2
    side = dayclose.stores_day(uow, day=DAY, time_zone=ZONE, principal=ADMIN).stores
    assert {x.store: x.closed_at for x in side} == {"TPE-101": at(7, 9), "TPE-102": at(7, 10)}


def test_members_who_joined_at_each_store_on_the_day(uow: UnitOfWork, day: dict[str, Any]) -> None:
    """會員招募: who joined at each store on the brand's day; online joins and duplicates merged
    away are not a store's new members."""
    from omo.identity import service as identity

    m = day["moment"]
    joined: dict[str, int] = {}
    for phone, where, moment in (
        ("0912-000-001", "TPE-101", at(6, 10)), ("0912-000-002", "TPE-101", at(6, 23, 59)),
        ("0912-000-003", "TPE-102", at(6, 11)), ("0912-000-004", "TPE-101", at(7, 0, 5)),
        ("0912-000-005", None, at(6, 12)), ("0912-000-006", "TPE-101", at(6, 13)),
    ):  # fmt: skip
        m.now = moment
        joined[phone] = enrol(uow, phone=phone, join_store=where).member.id
    m.now = at(7, 9)
    identity.merge_use_case(uow, survivor_id=joined["0912-000-001"],
                            absorbed_id=joined["0912-000-006"], note="dup", actor="t")  # fmt: skip
    got = {
        code: dayclose.store_day(uow, store=code, day=DAY, time_zone=ZONE, principal=ADMIN).enrolled
        for code in ("TPE-101", "TPE-102")
    }
    assert got == {"TPE-101": 2, "TPE-102": 1}
    lines = dayclose.stores_day(uow, day=DAY, time_zone=ZONE, principal=ADMIN)
    assert {x.store: x.enrolled for x in lines.stores} == {"TPE-101": 2, "TPE-102": 1}
    assert lines.total.enrolled == 3
    seventh = dayclose.store_day(uow, store="TPE-101", day=date(2026, 12, 7), time_zone=ZONE,
                                 principal=ADMIN)  # fmt: skip
    assert seventh.enrolled == 1


def test_the_tills_receipts_are_matched_one_by_one_and_nothing_is_written(
    uow: UnitOfWork, day: dict[str, Any]
) -> None:
    journal = TillJournal.model_validate({"receipts": [
        {"external_id": "POS-1", "total": "1030"},
        {"external_id": "POS-2", "total": "1500"},  # the till says 1,500; OMO has 1,600
        {"external_id": "POS-3", "total": "600"},  # recorded at TPE-102
        {"external_id": "POS-5", "total": "800"},  # recorded on the 7th
        {"external_id": "POS-9", "total": "450"},  # never arrived
        {"external_id": "POS-C", "total": "300"},  # OMO has it cancelled
    ]})  # fmt: skip
    before = dump(uow.engine)
    rec = dayclose.reconcile(
        uow, store="TPE-101", day=DAY, time_zone=ZONE, journal=journal, principal=ADMIN
    )
    assert dump(uow.engine) == before
    assert (rec.till_receipts, rec.till_total) == (6, Decimal(1030 + 1500 + 600 + 800 + 450 + 300))
    # POS-1, POS-2, POS-C, POS-4; the web pick-up is another channel's
    assert (rec.recorded, rec.recorded_total) == (4, Decimal(1030 + 1600 + 300 + 600))
    assert rec.matched == 1
    assert rec.missing == ["POS-9"]
    assert [(e.external_id, e.store, e.date, e.channel) for e in rec.elsewhere] == [
        ("POS-3", "TPE-102", DAY, "pos"), ("POS-5", "TPE-101", date(2026, 12, 7), "pos"),
    ]  # fmt: skip
    assert [(x.external_id, x.till_total, x.recorded_total, x.status) for x in rec.differing] == [
        ("POS-2", Decimal(1500), Decimal(1600), "completed"),
        ("POS-C", Decimal(300), Decimal(300), "cancelled"),
    ]
    assert [(u.external_id, u.total) for u in rec.unlisted] == [("POS-4", Decimal(600))]
    assert not rec.balanced
    # a number OMO holds under another channel (the web order paid for at the till) is not
    # missing: sent again as the till's, it would be a second order earning points again
    picked = dayclose.reconcile(
        uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN,
        journal=TillJournal.model_validate(
            {"receipts": [{"external_id": "W-PICK-1", "total": "500"}]}
        ),
    )  # fmt: skip
    assert picked.missing == []
    assert [(e.external_id, e.store, e.date, e.channel) for e in picked.elsewhere] == [
        ("W-PICK-1", "TPE-101", DAY, "web")
    ]
    # the till sends the lost sale again, as it was made; the day then balances
    sell(uow, "POS-9", ordered_at=at(6, 16).isoformat(),
         lines=[{"sku": "MISC", "quantity": 1, "unit_price": "450"}])  # fmt: skip
    fixed = TillJournal.model_validate({"receipts": [
        {"external_id": "POS-1", "total": "1030"}, {"external_id": "POS-2", "total": "1600"},
        {"external_id": "POS-4", "total": "600"}, {"external_id": "POS-9", "total": "450"},
    ]})  # fmt: skip
    rec = dayclose.reconcile(
        uow, store="TPE-101", day=DAY, time_zone=ZONE, journal=fixed, principal=ADMIN
    )
    assert (rec.matched, rec.missing, rec.elsewhere, rec.differing) == (4, [], [], [])
    assert [u.external_id for u in rec.unlisted] == ["POS-C"]  # cancelled, still OMO's
    web = dayclose.reconcile(
        uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN,
        journal=TillJournal.model_validate(
            {"channel": "web", "receipts": [{"external_id": "W-PICK-1", "total": "500"}]}
        ),
    )  # fmt: skip
    assert (web.matched, web.balanced) == (1, True)


def test_return_slips_are_matched_against_the_refunds_the_till_gave(
    uow: UnitOfWork, api: TestClient, day: dict[str, Any]
) -> None:
    """A journal that lists its return slips (negative totals) has them matched against the
    refunds given at the till that day, by the slip's number (the refund's key): r-2 at its
    amount, r-3 at another, r-7 given the next day, R-LOST never given in OMO (the member
    keeps the points the goods earned), r-4 given and not listed."""
    m = day["moment"]
    pos1, pos4 = _order(uow, "POS-1"), _order(uow, "POS-4")
    m.now = at(6, 23, 52)
    r3 = refund(uow, order_id=pos1.id, actor="till",
                req=RefundRequest(idempotency_key="r-3", lines=[RefundLine(line_no=2, quantity=1)]))  # fmt: skip
    m.now = at(6, 23, 55)
    refund(uow, order_id=pos4.id, actor="till", req=RefundRequest(idempotency_key="r-4"))
    m.now = at(7, 9, 30)
    r7 = refund(uow, order_id=_order(uow, "POS-5").id, actor="till",
                req=RefundRequest(idempotency_key="r-7"))  # fmt: skip
    text = (
        "單號,金額\nPOS-1,1030\nPOS-2,1600\nPOS-4,600\nr-2,-800\n"
        f"r-3,-{r3.amount + 1}\nr-7,NT$-{r7.amount}\nR-LOST,-500\n"
    )
    journal = dayclose.parse_journal(text)
    assert [r.total for r in journal.receipts][3:5] == [Decimal(-800), -(r3.amount + 1)]
    before = dump(uow.engine)
    rec = dayclose.reconcile(uow, store="TPE-101", day=DAY, time_zone=ZONE, journal=journal,
                             principal=ADMIN)  # fmt: skip
    assert dump(uow.engine) == before
    assert (rec.till_receipts, rec.till_total, rec.matched) == (3, Decimal(3230), 3)
    t = rec.returns
    assert t is not None and not rec.balanced
    assert (t.till_returns, t.till_refunded) == (4, 800 + r3.amount + 1 + r7.amount + 500)
    assert (t.recorded, t.recorded_refunded) == (3, Decimal(800) + r3.amount + 600)
    assert (t.matched, t.missing) == (1, ["R-LOST"])
    assert [(x.key, x.till_amount, x.recorded_amount) for x in t.differing] == [
        ("r-3", r3.amount + 1, r3.amount)
    ]
    assert [(x.key, x.store, x.date, x.external_id) for x in t.elsewhere] == [
        ("r-7", "TPE-101", date(2026, 12, 7), "POS-5")
    ]
    assert [(x.key, x.recorded_amount, x.external_id) for x in t.unlisted] == [
        ("r-4", Decimal(600), "POS-4")
    ]
    # the slips put right, over the API: balanced; a journal with no slips checks no refunds
    right = {"receipts": [
        {"external_id": "POS-1", "total": "1030"}, {"external_id": "POS-2", "total": "1600"},
        {"external_id": "POS-4", "total": "600"}, {"external_id": "r-2", "total": "-800"},
        {"external_id": "r-3", "total": f"-{r3.amount}"}, {"external_id": "r-4", "total": "-600"},
    ]}  # fmt: skip
    r = api.post("/api/v1/stores/TPE-101/days/2026-12-06/reconcile", json=right)
    assert r.status_code == 200, r.text
    got = r.json()["returns"]
    assert got["matched"] == 3 and not any(got[k] for k in ("missing", "elsewhere", "differing",
                                                           "unlisted"))  # fmt: skip
    assert [u["external_id"] for u in r.json()["unlisted"]] == ["POS-C"]  # cancelled, OMO's
    sales = {"receipts": right["receipts"][:3]}
    plain = api.post("/api/v1/stores/TPE-101/days/2026-12-06/reconcile", json=sales).json()
    assert plain["returns"] is None and plain["unlisted"] == r.json()["unlisted"]
    # at TPE-102 the sales balance: the day balances or not by its slips alone
    m.now = at(6, 23, 58)
    refund(uow, order_id=_order(uow, "POS-3").id, actor="till",
           req=RefundRequest(idempotency_key="k-1"))  # fmt: skip
    for slip, balanced in (("-600", True), ("-500", False)):
        body = {"receipts": [{"external_id": "POS-3", "total": "600"},
                             {"external_id": "k-1", "total": slip}]}  # fmt: skip
        got = api.post("/api/v1/stores/TPE-102/days/2026-12-06/reconcile", json=body).json()
        assert (got["matched"], got["balanced"]) == (1, balanced), got


def test_a_web_shops_orders_of_the_day_are_matched_at_every_store_and_none(
    uow: UnitOfWork, api: TestClient, day: dict[str, Any]
) -> None:
    day["moment"].now = at(6, 18)
    post_order(uow, channel="web", external_id="W-HOME-1", ordered_at=at(6, 18).isoformat(),
               lines=[{"sku": "BEA-1", "quantity": 1, "unit_price": "250"}])  # delivered  # fmt: skip
    day["moment"].now = at(7, 9)
    export = {"channel": "web", "receipts": [
        {"external_id": "W-PICK-1", "total": "500"},  # picked up at TPE-101
        {"external_id": "W-HOME-1", "total": "250"},  # delivered: no store
        {"external_id": "W-LOST-7", "total": "980"},  # the shop has it; OMO never heard
    ]}  # fmt: skip
    before = dump(uow.engine)
    got = dayclose.reconcile_channel(uow, day=DAY, time_zone=ZONE, principal=ADMIN,
                                     journal=TillJournal.model_validate(export))  # fmt: skip
    assert (got.store, got.channel, got.matched, got.missing) == (None, "web", 2, ["W-LOST-7"])
    assert (got.unlisted, got.elsewhere, got.differing, got.balanced) == ([], [], [], False)
    r = api.post("/api/v1/orders/days/2026-12-06/reconcile", json=export)
    assert r.status_code == 200 and r.json()["missing"] == ["W-LOST-7"], r.text
    assert dump(uow.engine) == before
    till = create_key(uow, name="till-101", store_code="TPE-101", scopes=["orders:write"]).key
    denied = api.post("/api/v1/orders/days/2026-12-06/reconcile", json=export,
                      headers={"Authorization": f"Bearer {till}"})  # fmt: skip
    assert denied.status_code == 403
    assert api.post("/api/v1/orders/days/2026-12-08/reconcile", json=export).status_code == 422


def test_a_day_that_is_not_there_or_another_stores_is_refused(
    uow: UnitOfWork, day: dict[str, Any]
) -> None:
    with pytest.raises(ValidationFailed, match="to today") as info:
        dayclose.store_day(
            uow, store="TPE-101", day=date(2026, 12, 8), time_zone=ZONE, principal=ADMIN
        )
    assert info.value.field == "path.day"
    with pytest.raises(ValidationFailed):
        dayclose.store_day(
            uow, store="TPE-101", day=date(1999, 12, 31), time_zone=ZONE, principal=ADMIN
        )
    with pytest.raises(NotFound):
        dayclose.store_day(uow, store="NOPE", day=DAY, time_zone=ZONE, principal=ADMIN)
    created = create_key(uow, name="till-102", store_code="TPE-102", scopes=["orders:write"])
    till = Principal(created.name, created.store_id, frozenset(created.scopes))
    with pytest.raises(Forbidden) as refused:
        dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=till)
    assert refused.value.code == "wrong_store"
    own = dayclose.store_day(uow, store="TPE-102", day=DAY, time_zone=ZONE, principal=till)
    assert (own.sales.orders, own.sales.total) == (1, Decimal(600))


def test_every_stores_day_side_by_side_with_the_quiet_ones_named(
    uow: UnitOfWork, day: dict[str, Any]
) -> None:
    store(uow, "TPE-103")  # open, and nothing of it reached OMO
    day["moment"].now = at(6, 14, 30)
    post_order(uow, channel="web", external_id="W-HOME-1", ordered_at=at(6, 14, 30).isoformat(),
               lines=[{"sku": "BEA-1", "quantity": 1, "unit_price": "250"}])  # delivered: no store  # fmt: skip
    day["moment"].now = at(7, 9)
    got = dayclose.stores_day(uow, day=DAY, time_zone=ZONE, principal=ADMIN)
    assert got.complete
    rows = {r.store: r for r in got.stores}
    assert list(rows) == ["TPE-101", "TPE-102", "TPE-103", None]
    tpe = rows["TPE-101"]
    sale: CommitResult = day["sale"]
    assert (tpe.orders, tpe.member_orders, tpe.total, tpe.member_total) == (
        4, 1, Decimal(3730), Decimal(1030),
    )  # fmt: skip
    assert tpe.member_share == round(1030 / 3730, 4)
    assert (tpe.refunds, tpe.refunded, tpe.net) == (1, Decimal(800), Decimal(2930))
    assert (tpe.points_earned, tpe.points_redeemed) == (sale.points_earned, 200)
    assert tpe.name == "門市 TPE-101"
    assert (rows["TPE-102"].orders, rows["TPE-102"].total) == (1, Decimal(600))
    assert (tpe.first_sale_at, tpe.last_sale_at) == (at(6, 10), at(6, 23, 50))
    quiet = rows["TPE-103"]
    assert (quiet.orders, quiet.total, quiet.member_share) == (0, Decimal(0), None)
    assert quiet.last_sale_at is None
    assert (rows[None].orders, rows[None].total, rows[None].name) == (1, Decimal(250), None)
    t = got.total
    assert (t.orders, t.total, t.refunded, t.net) == (6, Decimal(4580), Decimal(800), Decimal(3780))
    assert (t.first_sale_at, t.last_sale_at) == (at(6, 10), at(6, 23, 50))
    # each store's line is its own day's report
    one = dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)
    assert (one.sales.orders, one.sales.total, one.sales.member_total, one.net) == (
        tpe.orders, tpe.total, tpe.member_total, tpe.net,
    )  # fmt: skip
    created = create_key(uow, name="till-101", store_code="TPE-101", scopes=["kpis:read"])
    with pytest.raises(Forbidden):
        dayclose.stores_day(uow, day=DAY, time_zone=ZONE,
                            principal=Principal(created.name, created.store_id))  # fmt: skip


def test_the_day_close_api(uow: UnitOfWork, api: TestClient, day: dict[str, Any]) -> None:
    got = api.get("/api/v1/stores/TPE-101/days/2026-12-06")
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["sales"]["total"], body["net"], body["time_zone"]) == (
        "3730.00", "2930.00", "Asia/Taipei",
    )  # fmt: skip
    for bad, where in (
        ("/stores/TPE-101/days/2026-13-01", "day"),
        ("/stores/TPE-101/days/2026-12-08", "day"),
        ("/stores/TPE-101/days/0001-01-01", "day"),
        ("/stores/bad%20code/days/2026-12-06", "code"),
    ):
        r = api.get("/api/v1" + bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["detail"][0]["loc"][-1] == where, (bad, r.text)
    assert api.get("/api/v1/stores/NOPE/days/2026-12-06").status_code == 404
    every = api.get("/api/v1/stores/days/2026-12-06")
    assert every.status_code == 200, every.text
    assert every.json()["total"]["total"] == "4330.00"  # TPE-101 and TPE-102
    assert api.get("/api/v1/stores/days/2026-12-08").status_code == 422
    url = "/api/v1/stores/TPE-101/days/2026-12-06/reconcile"
    before = dump(uow.engine)
    ok = api.post(url, json={"receipts": [{"external_id": "POS-9", "total": "450"}]})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["missing"], ok.json()["balanced"]) == (["POS-9"], False)
    assert ok.json()["till_total"] == "450.00"
    twice = {"receipts": [{"external_id": "A-1", "total": 1}, {"external_id": "A-1", "total": 2}]}
    for body, needle in (
        (twice, "receipts.1.external_id"),
        ({"receipts": [{"external_id": "A-1", "total": "-1000000000.01"}]}, "total"),
        ({"receipts": [{"external_id": "A-1", "total": "1.005"}]}, "total"),
        ({"receipts": [], "store": "TPE-102"}, "store"),
        ({"receipts": [{"external_id": "A 1", "total": "1"}]}, "external_id"),
        ({"channel": "fax", "receipts": []}, "channel"),
        ({"receipts": [{"external_id": f"R-{n}", "total": "1"} for n in range(20_001)]},
         "receipts"),
    ):  # fmt: skip
        r = api.post(url, json=body)
        assert r.status_code == 422, (needle, r.text)
        assert needle in r.text, (needle, r.text)
    assert dump(uow.engine) == before
    # a till's key: its own store only, and it needs orders:write
    till = create_key(uow, name="till-102", store_code="TPE-102",
                      scopes=["orders:write", "kpis:read"])  # fmt: skip
    reader = create_key(uow, name="reader", store_code=None, scopes=["members:read"])
    for key, path, status in (
        (till.key, "/api/v1/stores/TPE-101/days/2026-12-06", 403),
        (till.key, "/api/v1/stores/TPE-102/days/2026-12-06", 200),
        (reader.key, "/api/v1/stores/TPE-101/days/2026-12-06", 403),
        (reader.key, "/api/v1/stores/days/2026-12-06", 403),  # kpis:read it lacks
        (till.key, "/api/v1/stores/days/2026-12-06", 403),  # bound to a store
    ):
        r = api.get(path, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == status, (path, r.text)
    r = api.post(url, json={"receipts": []}, headers={"Authorization": f"Bearer {till.key}"})
    assert r.status_code == 403 and r.json()["detail"][0]["type"] == "wrong_store"


def test_receipts_recorded_elsewhere_cost_no_statement_each(
    uow: UnitOfWork, day: dict[str, Any]
) -> None:
    """A journal of another store's receipts (the wrong file sent) is answered in a few
    statements, not one per receipt found elsewhere."""
    import sqlalchemy as sa

    day["moment"].now = at(6, 15)
    for n in range(40):
        post_order(uow, channel="pos", external_id=f"K-{n}", store="TPE-102",
                   ordered_at=at(6, 15).isoformat(),
                   lines=[{"sku": "BEA-1", "quantity": 1, "unit_price": "10"}])  # fmt: skip
    day["moment"].now = at(7, 9)
    journal = TillJournal.model_validate(
        {"receipts": [{"external_id": f"K-{n}", "total": "10"} for n in range(40)]}
    )
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(uow.engine, "before_cursor_execute", seen)
    try:
        got = dayclose.reconcile(uow, store="TPE-101", day=DAY, time_zone=ZONE, journal=journal,
                                 principal=ADMIN)  # fmt: skip
    finally:
        sa.event.remove(uow.engine, "before_cursor_execute", seen)
    assert [e.store for e in got.elsewhere] == ["TPE-102"] * 40
    assert len(statements) < 10, statements


@pytest.mark.postgres
def test_two_closings_of_one_day_at_once_make_one(
    uow: UnitOfWork, day: dict[str, Any], db_url: str
) -> None:
    """The store's manager and the nightly job close the same day at the same instant: one
    closing, one fact; the other is answered the first closing, no error reaching either."""
    import threading

    from omo.checkout.models import StoreDayClosing
    from omo.messaging.models import OutboxMessage

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    for attempt in range(5):  # the race, several times over
        the_day = date(2026, 12, 1 + attempt)
        barrier = threading.Barrier(2)
        answers: list[Any] = []

        def close(
            who: str, when: date = the_day, wait: threading.Barrier = barrier,
            out: list[Any] = answers,
        ) -> None:  # fmt: skip
            wait.wait()
            out.append(dayclose.close_day(uow, store="TPE-101", day=when, time_zone=ZONE,
                                          principal=Principal(who)))  # fmt: skip

        threads = [threading.Thread(target=close, args=(who,)) for who in ("manager", "job")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == 2, "a closing got an error"
        assert sorted(a.replayed for a in answers) == [False, True]
        assert answers[0].closed_at == answers[1].closed_at
        assert answers[0].closed_by == answers[1].closed_by
    with uow.read() as s:
        assert s.scalar(select(func.count()).select_from(StoreDayClosing)) == 5
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.topic == "StoreDayClosed")) == 5  # fmt: skip


def test_a_sale_the_closing_did_not_count_is_late_whatever_its_recorded_time(
    uow: UnitOfWork, day: dict[str, Any]
) -> None:
    """A till's transaction begun before the closing and committed after it is recorded at a
    time before the closing's: it is not in the closing's figures, so the day lists it as late
    (`since` and `recorded_after` say the same sales)."""
    from sqlalchemy import update

    from omo.checkout.models import StoreDayClosing

    def closing() -> Any:
        c = dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)
        assert c.closing is not None
        return c.closing

    closed = dayclose.close_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)
    assert closed.recorded_after == [] and closed.closed_at == at(7, 9)
    day["moment"].now = at(7, 8, 59)
    late = sell(uow, "POS-7", ordered_at=at(6, 21).isoformat(),
                lines=[{"sku": "BEA-1", "quantity": 1}])  # fmt: skip
    day["moment"].now = at(7, 10)
    c = closing()
    assert (c.since.orders, c.since.total) == (1, Decimal(600))
    assert [(x.order_id, x.recorded_at) for x in c.recorded_after] == [
        (late.order.id, at(7, 8, 59))
    ]
    # a closing kept before the closings kept their ids: told by the recorded time alone
    uow.run(lambda s: s.execute(update(StoreDayClosing).values(counted=None)))
    assert closing().recorded_after == []


def test_a_closing_waits_for_the_stores_sale_in_flight(
    uow: UnitOfWork, day: dict[str, Any], db_url: str
) -> None:
    """A sale whose order is written but not committed when the store's day is closed: the
    closing waits for it and counts it, so its figures and the sales it lists as late agree."""
    import threading

    from sqlalchemy import insert

    from omo.commerce.models import Order, Store

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    before = dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)
    with uow.engine.connect() as till:  # the till's transaction, its order written
        store_id = till.scalar(select(Store.id).where(Store.code == "TPE-101"))
        till.execute(insert(Order).values(
            channel="pos", external_id="POS-F", payload_hash="0" * 64, store_id=store_id,
            fulfilment="in_store", status="completed", ordered_at=at(6, 21), currency="TWD",
            subtotal=Decimal(600), discount_total=Decimal(0), shipping_fee=Decimal(0),
            total=Decimal(600), refunded_total=Decimal(0), created_at=at(7, 8, 59),
        ))  # fmt: skip
        answers: list[Any] = []
        closing = threading.Thread(target=lambda: answers.append(dayclose.close_day(
            uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)))  # fmt: skip
        closing.start()
        closing.join(1.0)
        assert closing.is_alive() and answers == []  # waiting for the sale
        till.commit()
    closing.join(10)
    [closed] = answers
    assert closed.at_closing.orders == before.sales.orders + 1  # counted
    assert closed.at_closing.total == before.sales.total + 600
    assert closed.recorded_after == [] and closed.since.orders == 0


def test_a_closed_day_is_reopened_with_a_reason_and_closed_again(
    uow: UnitOfWork, api: TestClient, day: dict[str, Any]
) -> None:
    """取消日結: a day closed before an offline till sent its last sale is reopened by the back
    office with a reason; closing it again counts the sale and keeps the next version. An ERP
    reverses the first closing by its StoreDayReopened fact."""
    from omo.audit.models import AuditEntry
    from omo.messaging.models import OutboxMessage

    def facts(topic: str) -> list[tuple[str, dict[str, Any]]]:
        with uow.read() as s:
            rows = s.execute(select(OutboxMessage.key, OutboxMessage.payload)
                             .where(OutboxMessage.topic == topic).order_by(OutboxMessage.id))  # fmt: skip
            return [(k, p) for k, p in rows.all()]

    url = "/api/v1/stores/TPE-101/days/2026-12-06"
    before = dump(uow.engine)
    not_closed = api.post(f"{url}/reopen", json={"reason": "sales missing"})
    assert not_closed.status_code == 409
    assert not_closed.json()["detail"][0]["type"] == "day_not_closed"
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 201},
                 {"reason": "ok", "colour": "red"}):  # fmt: skip
        assert api.post(f"{url}/reopen", json=body).status_code == 422, body
    assert dump(uow.engine) == before

    first = api.post(f"{url}/close").json()
    n = first["at_closing"]["orders"]
    assert first["version"] == 1 and n > 0
    till = create_key(uow, name="till", store_code="TPE-101", scopes=["orders:write"]).key
    elsewhere = create_key(uow, name="khh", store_code="TPE-102", scopes=["days:reopen"]).key
    for key, kind in ((till, "missing_scope"), (elsewhere, "wrong_store")):
        refused = api.post(f"{url}/reopen", json={"reason": "x"},
                           headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        assert refused.status_code == 403 and refused.json()["detail"][0]["type"] == kind

    day["moment"].now = at(7, 11)
    reopened = api.post(f"{url}/reopen", json={"reason": " POS-9 not sent yet "})
    assert reopened.status_code == 200, reopened.text
    r = reopened.json()
    assert (r["version"], r["reason"], r["closed_at"], r["at_closing"]) == (
        1, "POS-9 not sent yet", first["closed_at"], first["at_closing"])  # fmt: skip
    assert datetime.fromisoformat(r["reopened_at"].replace("Z", "+00:00")) == at(7, 11)
    again = api.post(f"{url}/reopen", json={"reason": "twice"})
    assert again.status_code == 409  # open already
    shown = dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE, principal=ADMIN)
    assert shown.closing is None and shown.reopened is not None
    assert shown.reopened.reopened_by == r["reopened_by"]
    side = dayclose.stores_day(uow, day=DAY, time_zone=ZONE, principal=ADMIN).stores
    assert {x.store: x.closed_at for x in side}["TPE-101"] is None  # open again

    late = sell(uow, "POS-9", ordered_at=at(6, 22).isoformat(),
                lines=[{"sku": "BEA-1", "quantity": 1}])  # fmt: skip
    day["moment"].now = at(7, 12)
    second = api.post(f"{url}/close")
    assert second.status_code == 201, second.text
    s2 = second.json()
    assert s2["version"] == 2 and s2["closed_at"] != first["closed_at"]
    assert s2["at_closing"]["orders"] == n + 1 and s2["recorded_after"] == []  # counted now
    assert api.post(f"{url}/close").json()["version"] == 2  # a retry answers it
    assert dayclose.store_day(uow, store="TPE-101", day=DAY, time_zone=ZONE,
                              principal=ADMIN).reopened is None  # fmt: skip
    closed = facts("StoreDayClosed")
    store_id = closed[0][1]["store_id"]
    assert [k for k, _p in closed] == [f"store-day:{store_id}:2026-12-06",
                                       f"store-day:{store_id}:2026-12-06:2"]  # fmt: skip
    assert [(p["version"], p["orders"]) for _k, p in closed] == [(1, n), (2, n + 1)]
    [(key, told)] = facts("StoreDayReopened")
    assert key == f"store-day-reopened:{store_id}:2026-12-06:1"
    assert (told["version"], told["reason"], told["store"], told["day"]) == (
        1, "POS-9 not sent yet", "TPE-101", "2026-12-06")  # fmt: skip
    assert told["at_closing"] == first["at_closing"]
    with uow.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "store_day.reopen"))
        assert entry is not None and entry.detail["at_closing"]["orders"] == n
    assert late.order.id > 0
