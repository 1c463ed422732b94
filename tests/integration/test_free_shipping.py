"""The monthly free shipping of a tier level (SQLite + PostgreSQL): a sale waives what coupons
leave of its shipping while the member has shipments left this month, a whole refund gives
the shipment back, the month is the programme's, and racing tills never take one too many."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omo.checkout import service as checkout
from omo.checkout.refunds import RefundLine, RefundRequest, refund
from omo.checkout.schemas import CommitRequest, QuoteRequest
from omo.commerce import service as commerce
from omo.commerce.schemas import ProductUpsert
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork
from omo.identity import service as identity
from omo.shared import clock
from omo.tiers import service as tiers
from omo.tiers.shipping import period_of
from tests.factories import ADMIN, enrol, post_order

GOLD = "0911-111-111"  # the default programme's gold: 2 free shipments a month
SILVER = "0922-222-222"  # none


def _member(uow: UnitOfWork, phone: str, spend: str) -> int:
    mid = enrol(uow, phone=phone).member.id
    post_order(uow, customer=[{"kind": "phone", "value": phone}],
               lines=[{"sku": "OLD", "quantity": 1, "unit_price": spend}])  # fmt: skip
    return mid


@pytest.fixture
def shop(uow: UnitOfWork) -> dict[str, int]:
    commerce.save_product(
        uow, sku="APP-1", data=ProductUpsert(name="APP-1", category="服飾", price=Decimal(800))
    )
    gold, silver = _member(uow, GOLD, "40000"), _member(uow, SILVER, "12000")
    assert tiers.member_tier(uow, member_id=gold).level == "gold"
    assert tiers.member_tier(uow, member_id=silver).level == "silver"
    return {"gold": gold, "silver": silver}


def web(member_id: int, **kw: Any) -> dict[str, Any]:
    return {
        "channel": "web", "fulfilment": "delivery", "member_id": member_id,
        "lines": [{"sku": "APP-1", "quantity": 1}], "shipping_fee": "80", **kw,
    }  # fmt: skip


def sell(uow: UnitOfWork, body: dict[str, Any]) -> Any:
    req = CommitRequest.model_validate(body)
    return checkout.commit(uow, req=req, principal=ADMIN, currency="TWD", region="TW")


def left(uow: UnitOfWork, member_id: int) -> tuple[int, int]:
    t = tiers.member_tier(uow, member_id=member_id)
    return t.free_shipping_used, t.free_shipping_left


def test_two_shipments_a_month_then_the_customer_pays(
    uow: UnitOfWork, shop: dict[str, int]
) -> None:
    gold = shop["gold"]
    assert left(uow, gold) == (0, 2)
    asked = {k: v for k, v in web(gold).items() if k != "fulfilment"}
    quote = checkout.quote(uow, req=QuoteRequest.model_validate(asked), region="TW")
    assert (quote.shipping_discount, quote.tier_shipping_discount) == (80, 80)
    assert quote.total == Decimal(800) * Decimal("0.9")  # gold's 10 % off, shipping waived
    assert left(uow, gold) == (0, 2), "a quote uses nothing"
    paid = [sell(uow, web(gold, external_id=f"W-{n}")) for n in range(3)]
    assert [s.price.tier_shipping_discount for s in paid] == [80, 80, 0]
    assert [s.order.shipping_fee for s in paid] == [0, 0, 80]
    assert [s.order.total for s in paid] == [720, 720, 800]
    assert left(uow, gold) == (2, 0)
    again = sell(uow, web(gold, external_id="W-0"))  # a till's retry: answered, nothing used
    assert again.replayed and left(uow, gold) == (2, 0)


def test_levels_without_the_benefit_and_guests_pay_shipping(
    uow: UnitOfWork, shop: dict[str, int]
) -> None:
    sale = sell(uow, web(shop["silver"], external_id="S-1"))
    assert (sale.price.tier_shipping_discount, sale.order.shipping_fee) == (0, 80)
    guest = {**web(shop["silver"], external_id="G-1"), "member_id": None}
    assert sell(uow, guest).order.shipping_fee == 80
    assert left(uow, shop["silver"]) == (0, 0)


def test_coupons_waive_first_and_a_sale_without_shipping_uses_none(
    uow: UnitOfWork, shop: dict[str, int]
) -> None:
    gold = shop["gold"]
    free = CouponTemplate(name="免運", kind="free_shipping")
    coupons.put_template(uow, code="SHIP", template=free)
    code = coupons.issue(uow, template_code="SHIP", member_ids=[gold], key="k").issued[0].code
    by_coupon = sell(uow, web(gold, external_id="C-1", coupon_codes=[code]))
    assert by_coupon.price.coupons[0].shipping_discount == 80
    assert (by_coupon.price.shipping_discount, by_coupon.price.tier_shipping_discount) == (80, 0)
    no_fee = sell(uow, web(gold, external_id="C-2", shipping_fee="0"))
    assert no_fee.price.tier_shipping_discount == 0
    assert left(uow, gold) == (0, 2)


def test_a_whole_refund_gives_the_shipment_back_a_partial_one_does_not(
    uow: UnitOfWork, shop: dict[str, int]
) -> None:
    gold = shop["gold"]
    two = [{"sku": "APP-1", "quantity": 1}, {"sku": "APP-1", "quantity": 1}]
    first = sell(uow, web(gold, external_id="R-1", lines=two))
    second = sell(uow, web(gold, external_id="R-2"))
    assert left(uow, gold) == (2, 0)
    part = refund(
        uow, order_id=first.order.id, actor="t",
        req=RefundRequest(idempotency_key="p1", lines=[RefundLine(line_no=1, quantity=1)]),
    )  # fmt: skip
    assert not part.free_shipping_restored and left(uow, gold) == (2, 0)
    whole = refund(uow, order_id=second.order.id, req=RefundRequest(idempotency_key="w"), actor="t")
    assert whole.free_shipping_restored and left(uow, gold) == (1, 1)
    replay = refund(
        uow, order_id=second.order.id, req=RefundRequest(idempotency_key="w"), actor="t"
    )
    assert replay.replayed and left(uow, gold) == (1, 1)
    rest = refund(
        uow, order_id=first.order.id, actor="t",
        req=RefundRequest(idempotency_key="p2", lines=[RefundLine(line_no=2, quantity=1)]),
    )  # fmt: skip
    assert rest.order.status == "refunded" and rest.free_shipping_restored
    assert left(uow, gold) == (0, 2)
    assert sell(uow, web(gold, external_id="R-3")).price.tier_shipping_discount == 80


def test_the_month_is_the_programmes_zone(uow: UnitOfWork, shop: dict[str, int]) -> None:
    gold = shop["gold"]
    clock.set_clock(lambda: datetime(2026, 3, 31, 15, 30, tzinfo=UTC))  # 23:30 in Taipei
    for n in range(2):
        sell(uow, web(gold, external_id=f"M-{n}"))
    assert left(uow, gold) == (2, 0)
    assert sell(uow, web(gold, external_id="M-2")).order.shipping_fee == 80
    clock.set_clock(lambda: datetime(2026, 3, 31, 16, 30, tzinfo=UTC))  # April in Taipei
    assert left(uow, gold) == (0, 2)
    assert sell(uow, web(gold, external_id="M-3")).order.shipping_fee == 0


def test_a_merge_brings_the_absorbed_members_shipments_and_undo_takes_them_back(
    uow: UnitOfWork, shop: dict[str, int]
) -> None:
    gold = shop["gold"]
    other = _member(uow, "0933-333-333", "31000")  # together still gold
    sell(uow, web(other, external_id="O-1"))
    sell(uow, web(gold, external_id="O-2"))
    merged = identity.merge_use_case(
        uow, survivor_id=gold, absorbed_id=other, note="same", actor="t"
    )
    assert left(uow, gold) == (2, 0)
    assert sell(uow, web(other, external_id="O-3")).order.shipping_fee == 80  # sold to gold
    identity.undo_use_case(uow, merge_id=merged.id, actor="t")
    assert left(uow, gold) == (1, 1)  # O-3 paid its shipping: no use
    assert left(uow, other) == (1, 1)


def test_the_checkout_and_tier_apis_show_it(api: TestClient, uow: UnitOfWork) -> None:
    commerce.save_product(
        uow, sku="APP-1", data=ProductUpsert(name="APP-1", category="服飾", price=Decimal(800))
    )
    gold = _member(uow, GOLD, "40000")
    r = api.post("/api/v1/checkout/commit", json=web(gold, external_id="A-1"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["price"]["tier_shipping_discount"], body["order"]["shipping_fee"]) == (
        "80.00",
        "0.00",
    )
    tier = api.get(f"/api/v1/members/{gold}/tier").json()
    assert (tier["free_shipping_used"], tier["free_shipping_left"]) == (1, 1)
    r = api.post(f"/api/v1/orders/{body['order']['id']}/refund", json={"idempotency_key": "x"})
    assert r.status_code == 200 and r.json()["free_shipping_restored"] is True, r.text


def test_racing_tills_never_take_more_than_the_quota(
    uow: UnitOfWork, shop: dict[str, int], db_url: str
) -> None:
    """12 tills sell to one gold member at once: exactly two sales ship free."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    gold = shop["gold"]
    barrier = threading.Barrier(12)
    fees: list[Decimal] = []

    def till(n: int) -> None:
        barrier.wait()
        fees.append(sell(uow, web(gold, external_id=f"RACE-{n}")).order.shipping_fee)

    threads = [threading.Thread(target=till, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(fees) == [0, 0] + [80] * 10
    assert left(uow, gold) == (2, 0)


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("sale"), st.booleans(), st.just(0)),  # with a shipping fee or not
        st.tuples(st.just("refund"), st.integers(0, 20), st.integers(0, 2)),  # 0 whole, else line
        st.tuples(st.just("wait"), st.integers(1, 20), st.just(0)),  # days
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=int(os.environ.get("OMO_EXAMPLES", "15")),
    derandomize=os.environ.get("CI") == "true",
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(STEPS)
def test_any_sequence_of_sales_refunds_and_months_matches_a_model(
    uow: UnitOfWork, shop: dict[str, int], steps: list[tuple[str, Any, int]]
) -> None:
    """A model of the quota — a month's uses, each given back when its order is refunded
    whole — predicts which sales ship free, whatever the order of sales, refunds and months."""
    tag = uuid.uuid4().hex[:8]
    now = datetime(2026, 12, 20, 4, 0, tzinfo=UTC)
    clock.set_clock(lambda: now)
    gold = _member(uow, f"09{int(tag, 16) % 10**8:08d}", "40000")  # each example its own
    uses: dict[int, str] = {}  # order → month, while its shipment counts
    returned: dict[int, set[int]] = {}  # order → lines returned
    orders: list[int] = []
    two = [{"sku": "APP-1", "quantity": 1}, {"sku": "APP-1", "quantity": 1}]
    for n, (op, a, b) in enumerate(steps):
        month = period_of(now, "Asia/Taipei")
        if op == "sale":
            allowed = tiers.member_tier(uow, member_id=gold).benefits.monthly_free_shipping
            free = a and sum(1 for m in uses.values() if m == month) < allowed
            sale = sell(uow, web(gold, external_id=f"{tag}-{n}", lines=two,
                                 shipping_fee="80" if a else "0"))  # fmt: skip
            assert sale.order.shipping_fee == (0 if free or not a else 80), (n, month, uses)
            orders.append(sale.order.id)
            returned[sale.order.id] = set()
            if free:
                uses[sale.order.id] = month
        elif op == "refund" and orders:
            order = orders[a % len(orders)]
            if len(returned[order]) == 2 or (b and b in returned[order]):
                continue  # nothing left of it to return
            lines = [RefundLine(line_no=b, quantity=1)] if b else None
            done = refund(uow, order_id=order, actor="t",
                          req=RefundRequest(idempotency_key=f"{tag}-{n}", lines=lines))  # fmt: skip
            returned[order] |= {b} if b else {1, 2}
            whole = len(returned[order]) == 2
            assert done.free_shipping_restored == (whole and order in uses)
            if whole:
                uses.pop(order, None)
        elif op == "wait":
            now = now + timedelta(days=a)
            clock.set_clock(lambda at=now: at)
        used = sum(1 for m in uses.values() if m == period_of(now, "Asia/Taipei"))
        assert left(uow, gold)[0] == used
    clock.reset_clock()
