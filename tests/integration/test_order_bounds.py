"""What one order may come to, what one ledger entry holds, and the years a moment lies in
(SQLite + PostgreSQL).

Every field of a sale was within its bounds, yet a basket of large lines recorded an order whose
sums a second one overflowed, a member's level discount on a large line was refused as an
internal field (`lines.0.discount`), a programme of a point per cent earned more points than
PostgreSQL's `integer` holds (a 500 there, an entry SQLite kept), and a year-1 moment ahead of
UTC was a 500. Each is now a refusal that says so and changes nothing, or a sale that goes
through."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from omo.db import UnitOfWork
from omo.points import service as points
from omo.points.rules import PointsRules
from omo.tiers import service as tiers
from tests.conftest import dump
from tests.factories import enrol, post_order, store

PHONE = "0912-345-678"


def sale(n: str, quantity: int, price: str, **kw: Any) -> dict[str, Any]:
    return {"channel": "pos", "store": "TPE-101", "external_id": n,
            "lines": [{"sku": "BIG", "quantity": quantity, "unit_price": price}], **kw}  # fmt: skip


def quote(sale: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sale.items() if k != "external_id"}


def test_a_basket_over_what_one_order_may_come_to_is_refused(
    api: TestClient, uow: UnitOfWork, engine: sa.Engine
) -> None:
    store(uow, "TPE-101")
    before = dump(engine)
    over = sale("BIG-1", 11, "1000000000")
    for path, body in (("/api/v1/checkout/quote", quote(over)), ("/api/v1/checkout/commit", over)):
        r = api.post(path, json=body)
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == [{
            "loc": ["body", "lines"], "type": "order_too_large",
            "msg": "the basket comes to 11000000000.00, more than one order may (10000000000)",
            "ctx": {"amount": "11000000000.00", "max_order": "10000000000"},
        }]  # fmt: skip
    # the shipping counts: lines at the bound and a fee over it
    r = api.post("/api/v1/checkout/commit", json={**sale("BIG-2", 10, "1000000000"),
                                                  "channel": "web", "fulfilment": "store_pickup",
                                                  "shipping_fee": "60"})  # fmt: skip
    assert (r.status_code, r.json()["detail"][0]["type"]) == (422, "order_too_large"), r.text
    # an order from another channel or an import: the same bound
    r = api.post("/api/v1/orders", json={**over, "ordered_at": "2026-01-01T10:00:00+08:00"})
    assert r.status_code == 422, r.text
    assert "more than one order may (10000000000)" in r.json()["detail"][0]["msg"]
    assert dump(engine) == before


def test_a_coupon_checked_or_used_on_a_basket_over_the_bound_is_refused(
    api: TestClient, uow: UnitOfWork, engine: sa.Engine
) -> None:
    """A coupon checked or used by itself (`/coupons/{code}/check`, `/redeem`) took any basket:
    half off 500 lines of 100,000 units at NT$1,000,000,000 recorded a redemption of
    NT$25,000,000,000,000,000, and four of them overflowed the coupons' KPIs (a 500 on SQLite)."""
    half = {"name": "半價", "kind": "percent_off", "percent": "50", "valid_days": 30}
    assert api.put("/api/v1/coupons/templates/HALF", json=half).status_code == 201
    mid = enrol(uow, phone=PHONE).member.id
    issued = api.post(
        "/api/v1/coupons/templates/HALF/issue", json={"member_ids": [mid], "key": "k"}
    )
    code = issued.json()["issued"][0]["code"]
    before = dump(engine)
    line = {"sku": "BIG", "quantity": 100_000, "unit_price": "1000000000"}
    for basket in ({"channel": "web", "lines": [line] * 500},
                   {"channel": "web", "lines": [{**line, "quantity": 10}],
                    "shipping_fee": "0.01"}):  # fmt: skip
        for path, body in (("check", {"member_id": mid, "basket": basket}),
                           ("redeem", {"member_id": mid, "basket": basket,
                                       "idempotency_key": "w-1"})):  # fmt: skip
            r = api.post(f"/api/v1/coupons/{code}/{path}", json=body)
            assert r.status_code == 422, r.text
            (refusal,) = r.json()["detail"]
            assert (refusal["loc"], refusal["type"], refusal["ctx"]["max_order"]) == (
                ["body", "basket", "lines"], "order_too_large", "10000000000")  # fmt: skip
    assert dump(engine) == before
    at_the_bound = {"channel": "web", "lines": [{**line, "quantity": 10}]}
    r = api.post(f"/api/v1/coupons/{code}/redeem", json={
        "member_id": mid, "basket": at_the_bound, "idempotency_key": "w-1"})  # fmt: skip
    assert (r.status_code, r.json()["discount"]) == (200, "5000000000.00"), r.text
    kpis = {k["code"]: k for k in api.get("/api/v1/coupons/kpis").json()}
    assert kpis["HALF"]["discount_cost"] == "5000000000.00"


def test_a_level_discount_over_a_unit_price_s_bound_is_sold(
    api: TestClient, uow: UnitOfWork
) -> None:
    """A diamond member (85 %) buys NT$10,000,000,000 of goods: the level takes 1,500,000,000
    off the line, more than a unit price may be, and the sale is recorded as priced."""
    store(uow, "TPE-101")
    mid = enrol(uow, phone=PHONE).member.id
    post_order(uow, customer=[{"kind": "phone", "value": PHONE}],
               lines=[{"sku": "OLD", "quantity": 1, "unit_price": "100000"}])  # fmt: skip
    assert tiers.member_tier(uow, member_id=mid).level == "diamond"
    r = api.post("/api/v1/checkout/commit", json=sale("BIG-3", 10, "1000000000", member_id=mid))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["price"]["tier_discount"], body["order"]["total"]) == (
        "1500000000.00", "8500000000.00")  # fmt: skip
    assert body["points_earned"] == 170_000_000  # 85,000,000 points of NT$100 × diamond's 2
    assert points.summary(uow, member_id=mid).pending == 170_000_000


def test_a_sale_earning_more_than_one_entry_holds_is_refused(
    api: TestClient, uow: UnitOfWork, engine: sa.Engine
) -> None:
    """A programme of a point per cent: NT$100,000,000 would earn 10,000,000,000 points, five
    times what one entry holds. The quote says so, the sale and a channel's order are refused,
    and nothing is recorded; a sale of a tenth of it earns."""
    store(uow, "TPE-101")
    mid = enrol(uow, phone=PHONE).member.id
    points.set_programme(uow, rules=PointsRules(spend_per_point=Decimal("0.01")), actor="t")
    before = dump(engine)
    big = sale("PTS-1", 100, "1000000", member_id=mid)
    for path, body in (("/api/v1/checkout/quote", quote(big)), ("/api/v1/checkout/commit", big)):
        r = api.post(path, json=body)
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == [{
            "loc": ["body", "lines"], "type": "too_many_points",
            "msg": "10000000000 points at once: one entry of the ledger holds at most 2000000000",
            "ctx": {"points": 10_000_000_000, "max_entry": 2_000_000_000},
        }]  # fmt: skip
    r = api.post("/api/v1/orders", json={**big, "ordered_at": "2026-01-01T10:00:00+08:00"})
    assert (r.status_code, r.json()["detail"][0]["type"]) == (422, "too_many_points"), r.text
    assert dump(engine) == before
    r = api.post("/api/v1/checkout/commit", json=sale("PTS-2", 10, "1000000", member_id=mid))
    assert (r.status_code, r.json()["points_earned"]) == (201, 1_000_000_000), r.text


FAR = ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00")  # beyond the years in UTC
REPORTS = ("/api/v1/analytics/kpis", "/api/v1/analytics/attribution", "/api/v1/analytics/funnel",
           "/api/v1/analytics/discounts", "/api/v1/kpis/identity", "/api/v1/referrals/summary",
           "/api/v1/rewards/partners/settlement")  # fmt: skip


def test_moments_past_the_years_are_refused_not_a_500(
    api: TestClient, uow: UnitOfWork, engine: sa.Engine
) -> None:
    """A moment of year 1 ahead of UTC, or of 9999 behind it, has no UTC: turning it into UTC
    raised an OverflowError (a 500) in a sale, an order, a coupon template and every report."""
    store(uow, "TPE-101")
    before = dump(engine)
    said = "timestamps must lie between the years 1900 and 2999 (UTC)"
    for when in FAR:
        for path, body in (("/api/v1/checkout/commit", sale("FAR", 1, "100", ordered_at=when)),
                           ("/api/v1/orders", sale("FAR", 1, "100", ordered_at=when))):  # fmt: skip
            r = api.post(path, json=body)
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == ["body", "ordered_at"]
            assert said in r.json()["detail"][0]["msg"]
        template = {"name": "遠", "kind": "amount_off", "amount": "10", "valid_until": when}
        r = api.put("/api/v1/coupons/templates/FAR", json=template)
        assert (r.status_code, r.json()["detail"][0]["loc"]) == (422, ["body", "valid_until"])
        for path in REPORTS:
            for name in ("from", "to"):
                r = api.get(path, params={name: when})
                assert r.status_code == 422, (path, r.text)
                assert r.json()["detail"][0]["loc"] == ["query", name]
    assert dump(engine) == before
    # within the years, without an offset (UTC) or with one: answered as before
    r = api.get("/api/v1/analytics/kpis", params={"from": "2026-01-01T00:00:00",
                                                  "to": "2026-02-01T00:00:00+08:00"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["period_from"], r.json()["period_to"]) == (
        "2026-01-01T00:00:00Z", "2026-01-31T16:00:00Z")  # fmt: skip
