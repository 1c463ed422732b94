"""GET /api/v1/analytics/kpis on a small world built through the real use cases, in time order
with the clock moved, so that every figure below is counted by hand (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from omo.apikeys.service import create_key
from omo.checkout.refunds import RefundLine, RefundRequest, refund
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.coupons.schemas import BasketIn
from omo.db import UnitOfWork
from omo.points import service as points
from omo.points.schemas import PointsChange
from omo.shared import clock
from omo.tiers import service as tiers
from tests.factories import enrol, post_order, store

FROM, TO = "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"


def on(day: str) -> str:
    """Noon UTC (20:00 in Taipei) of a day, and the clock set to it."""
    when = datetime.fromisoformat(f"{day}T12:00:00+00:00")
    clock.set_clock(lambda: when)
    return when.isoformat()


def lines(price: str, quantity: int = 1) -> list[dict[str, Any]]:
    return [{"sku": "SKU-1", "quantity": quantity, "unit_price": price}]


def basket(price: str) -> BasketIn:
    return BasketIn.model_validate({"channel": "web", "lines": lines(price)})


def member(uow: UnitOfWork, day: str, n: int) -> int:
    on(day)
    return enrol(uow, phone=f"0911-000-{n:03d}", name=f"會員{n}").member.id


def test_kpis_of_a_month_counted_by_hand(api: Any, uow: UnitOfWork) -> None:
    on("2024-01-01")
    store(uow)
    coupons.put_template(uow, code="W50", template=CouponTemplate(name="w", kind="amount_off",
                                                                 amount=Decimal(50)))  # fmt: skip
    f, g = member(uow, "2024-01-01", 6), member(uow, "2024-01-01", 7)
    b = member(uow, "2025-01-05", 2)
    a = member(uow, "2025-03-01", 1)
    post_order(uow, member_id=f, ordered_at=on("2025-04-01"), lines=lines("35000"))  # gold
    post_order(uow, member_id=a, ordered_at=on("2025-08-01"), lines=lines("2000"))
    post_order(uow, member_id=g, ordered_at=on("2025-10-01"), lines=lines("12000"),
               channel="pos", store="TPE-101")  # silver  # fmt: skip
    post_order(uow, member_id=b, ordered_at=on("2025-12-01"), lines=lines("800"),
               channel="pos", store="TPE-101")  # fmt: skip
    h = member(uow, "2026-01-10", 8)
    on("2026-05-01")
    a_code = coupons.issue(uow, template_code="W50", member_ids=[a], key="a").issued[0].code
    # --- the period: June 2026 ---
    on("2026-06-02")
    assert points.expire_due(uow) == 350  # F's points of 2025-04-01
    assert tiers.review(uow) == 1  # F: gold → member, past review and grace
    c = member(uow, "2026-06-05", 3)
    c_code = coupons.issue(uow, template_code="W50", member_ids=[c], key="c").issued[0].code
    on("2026-06-06")
    coupons.redeem(uow, code=c_code, basket=basket("300"), member_id=c, key="rc")
    post_order(uow, member_id=c, ordered_at=on("2026-06-06"), lines=lines("300"))
    post_order(uow, member_id=c, ordered_at=on("2026-06-07"), lines=lines("200"))
    big = post_order(uow, member_id=a, ordered_at=on("2026-06-10"), lines=lines("6000", 2))
    on("2026-06-12")
    refund(uow, order_id=big.id, actor="t",
           req=RefundRequest(idempotency_key="r", lines=[RefundLine(line_no=1, quantity=1)]))  # fmt: skip
    post_order(uow, ordered_at=on("2026-06-12"), lines=lines("1000"), channel="pos",
               store="TPE-101")  # a guest  # fmt: skip
    d = member(uow, "2026-06-15", 4)
    coupons.issue(uow, template_code="W50", member_ids=[d], key="d")
    on("2026-06-16")
    points.adjust(uow, member_id=d, actor="t",
                  change=PointsChange(points=100, idempotency_key="d", reason="goodwill"))  # fmt: skip
    post_order(uow, member_id=a, ordered_at=on("2026-06-20"), lines=lines("500"),
               channel="pos", store="TPE-101")  # fmt: skip
    coupons.redeem(uow, code=a_code, basket=basket("500"), member_id=a, key="ra")
    post_order(uow, member_id=h, ordered_at=on("2026-06-25"), lines=lines("1000"))
    # --- after it ---
    e = member(uow, "2026-07-05", 5)
    post_order(uow, member_id=e, ordered_at=on("2026-07-06"), lines=lines("400"))
    clock.reset_clock()

    got = api.get("/api/v1/analytics/kpis", params={"from": FROM, "to": TO})
    assert got.status_code == 200, got.text
    k = got.json()
    assert k["period_from"].startswith("2026-06-01T00:00:00") and k["period_to"].startswith(
        "2026-07-01"
    )
    # A B C D F G H had joined by 1 July (E joined on the 5th); C and D in June
    assert (k["members"], k["new_members"]) == (7, 2)
    # buyers: A (two orders, bought before June), C (two), H (one)
    assert (k["active_members"], k["buyers"], k["repeat_buyers"], k["returning_buyers"]) == (
        3, 3, 2, 1,
    )  # fmt: skip
    assert (k["active_rate"], k["repurchase_rate"]) == (0.4286, 0.6667)
    # orders: C 300 + 200, A 12 000 (half refunded) + 500, guest 1 000, H 1 000
    assert (k["orders"], k["net_sales"], k["aov"]) == (6, "9000.00", "1500.00")
    assert k["identification_rate"] == round(14000 / 15000, 4)
    assert (k["online_share"], k["offline_share"]) == (0.9, 0.1)
    # A up to silver on the 10th and back down on the 12th (6 000 of the 12 000 that earned
    # it returned: 8 000 kept), F down from gold on the 2nd; G alone silver on 1 July
    assert (k["upgrades"], k["downgrades"]) == (1, 2)
    assert (k["upgrade_rate"], k["downgrade_rate"]) == (0.1429, 0.2857)
    assert (k["vip_members"], k["levels"], k["vip_share"]) == (1, {"silver": 1}, 0.1429)
    # bought by 1 July: A B C F G H; none since 2 January: B F G
    assert (k["dormant_after_days"], k["dormant_members"], k["dormancy_rate"]) == (180, 3, 0.5)
    # issued in June: C's (used) and D's; used in June: C's and A's (issued in May)
    assert (k["coupons_issued"], k["coupons_used"], k["coupon_redemption_rate"]) == (2, 1, 0.5)
    assert (k["coupon_redemptions"], k["coupon_discount"]) == (2, "100.00")
    # A 20 + 120 − 60 + 5 (a member again), B 8, C 3 + 2, D 100, F 350 − 350, G 120, H 10
    assert k["points_outstanding"] == 328
    assert (k["point_value"], k["points_liability"]) == ("1.00", "328.00")
    assert k["duplicate_account_rate"] == 0.0


def test_kpis_default_to_the_last_30_days_and_refuse_a_backwards_period(api: Any) -> None:
    got = api.get("/api/v1/analytics/kpis")
    assert got.status_code == 200, got.text
    k = got.json()
    span = datetime.fromisoformat(k["period_to"]) - datetime.fromisoformat(k["period_from"])
    assert span.days == 30 and k["members"] == 0 and k["aov"] == "0.00"
    bad = api.get("/api/v1/analytics/kpis", params={"from": TO, "to": FROM})
    assert bad.status_code == 422 and "from must be before to" in bad.text
    assert api.get("/api/v1/analytics/kpis", params={"from": "June"}).status_code == 422
    # dates datetime cannot step a year back from (or forward to) are refused, not a 500
    for report in ("kpis", "funnel", "discounts", "attribution"):
        for params in (
            {"to": "0001-01-05T00:00:00Z"},
            {"from": "0001-01-01T00:00:00Z"},
            {"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T00:00:00Z"},
        ):
            got = api.get(f"/api/v1/analytics/{report}", params=params)
            assert got.status_code == 422 and "must lie between" in got.text, (report, params)


def test_kpis_need_the_kpis_scope(client: Any, uow: UnitOfWork) -> None:
    key = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    client.headers["Authorization"] = f"Bearer {key}"
    assert client.get("/api/v1/analytics/kpis").status_code == 403
