"""Basket rules through `omo refresh` and the API (SQLite and PostgreSQL): only purchases that
count up to the refresh's date, rules read back by level and item, recommendations per member."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from omo.analytics.basket import BasketPolicy
from omo.analytics.refresh import RefreshOptions, refresh
from omo.checkout.refunds import RefundRequest
from omo.checkout.refunds import refund as refund_order
from omo.commerce import service as commerce
from omo.commerce.schemas import ProductUpsert
from omo.db import UnitOfWork
from tests.factories import enrol, post_order, store

AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
CATEGORY = {"A": "帽子", "B": "上衣", "C": "包包", "D": "襪子"}


def basket(*skus: str) -> list[dict[str, Any]]:
    return [{"sku": s, "category": CATEGORY[s], "quantity": 1, "unit_price": "100"} for s in skus]


@pytest.fixture
def shop(uow: UnitOfWork) -> dict[str, int]:
    store(uow)
    commerce.save_product(
        uow, sku="B", data=ProductUpsert(name="棉質上衣", category="上衣", price=Decimal(100))
    )
    ids = {n: enrol(uow, phone=f"0911-000-00{n[-1]}").member.id for n in ("M1", "M2", "M3", "M4")}
    day = iter(range(1, 29))

    def buy(who: str | None, *skus: str, **kw: Any) -> int:
        at = kw.pop("at", f"2026-06-{next(day):02d}T02:00:00+00:00")
        member = {"member_id": ids[who]} if who else {}
        return post_order(uow, ordered_at=at, lines=basket(*skus), **member, **kw).id

    # purchases: {A,B} {A,C} | {A,B} {B} | {C} | {A} {C}
    buy("M1", "A", "B"), buy("M1", "A", "C")
    buy("M2", "A", "B"), buy("M2", "B")
    buy("M3", "C")
    buy("M4", "A"), buy("M4", "C")
    # not purchases: cancelled, a guest's, refunded in full, after the refresh's date
    buy("M3", "A", "B", status="cancelled")
    buy(None, "A", "B")
    gone = buy("M2", "A", "C")
    refund_order(uow, order_id=gone, req=RefundRequest(idempotency_key="r"), actor="t")
    buy("M1", "A", "B", at="2026-07-05T02:00:00+00:00")
    return ids


def test_rules_and_recommendations_from_purchases_only(api: Any, uow: UnitOfWork, shop) -> None:
    options = RefreshOptions(as_of=AS_OF, basket=BasketPolicy(min_orders=2, min_support=0))
    assert refresh(uow, options).status == "done"
    # 7 purchases; A in 4, B in 3, C in 3; A and B together in 2 (A–C once, B–C never)
    got = api.get("/api/v1/analytics/basket", params={"level": "sku"})
    assert got.status_code == 200, got.text
    rules = got.json()
    assert [(r["antecedent"], r["consequent"], r["orders"]) for r in rules] == [
        ("A", "B", 2), ("B", "A", 2),
    ]  # fmt: skip
    assert rules[0]["support"] == pytest.approx(2 / 7)
    assert (rules[0]["confidence"], rules[1]["confidence"]) == (0.5, pytest.approx(2 / 3))
    assert rules[0]["lift"] == rules[1]["lift"] == pytest.approx(2 * 7 / (4 * 3))
    hats = api.get("/api/v1/analytics/basket", params={"level": "category", "item": "帽子"})
    assert [(r["consequent"], r["orders"]) for r in hats.json()] == [("上衣", 2)]
    assert api.get("/api/v1/analytics/basket", params={"min_lift": 2}).json() == []
    # M4 bought A and C: A → B; M2 has both already; M3 bought C, which leads nowhere
    m4 = api.get(f"/api/v1/members/{shop['M4']}/recommendations")
    assert m4.status_code == 200, m4.text
    assert m4.json() == [{"sku": "B", "name": "棉質上衣", "lift": pytest.approx(7 / 6),
                          "confidence": 0.5, "because": ["A"]}]  # fmt: skip
    assert api.get(f"/api/v1/members/{shop['M2']}/recommendations").json() == []
    assert api.get(f"/api/v1/members/{shop['M3']}/recommendations").json() == []


def test_new_products_reach_and_repeat(api: Any, uow: UnitOfWork, shop) -> None:
    assert refresh(uow, RefreshOptions(as_of=AS_OF)).status == "done"
    got = api.get("/api/v1/analytics/new-products")
    assert got.status_code == 200, got.text
    rows = [(r["sku"], r["name"], r["launched"], r["buyers"], r["repeat_buyers"],
             r["window_buyers"]) for r in got.json()]  # fmt: skip
    # A: M1 (twice), M2, M4 of the 4 who bought since 1 June; B: M1, M2 (twice); C from 2 June:
    # M1, M3, M4 of the 4 who bought since (M1's last purchase is that very order)
    assert rows == [
        ("C", None, "2026-06-02", 3, 0, 4),
        ("A", None, "2026-06-01", 3, 1, 4),
        ("B", "棉質上衣", "2026-06-01", 2, 1, 4),
    ]
    a = got.json()[1]
    assert (a["penetration"], a["repeat_rate"]) == (0.75, pytest.approx(1 / 3))
    # every member is tagged with the categories they bought, and rules can ask for them
    m1 = api.get(f"/api/v1/members/{shop['M1']}/scores").json()["tags"]
    assert [t for t in m1 if t.startswith("bought:")] == [
        "bought:上衣",
        "bought:包包",
        "bought:帽子",
    ]

    def count(rule: str) -> int:
        got = api.post("/api/v1/segments/count", json={"rule": rule})
        assert got.status_code == 200, got.text
        return int(got.json()["members"])

    assert count("tag('bought:包包')") == 3  # M1, M3, M4
    assert count("tag('bought:帽子') and not tag('bought:上衣')") == 1  # M4
    assert count("tag('bought:帽') or tag('bought:%')") == 0  # whole tags only, % is literal
    # a 29-day window starts at noon on 1 June: A and B were first bought before it
    refresh(uow, RefreshOptions(as_of=AS_OF, new_product_days=29))
    assert [r["sku"] for r in api.get("/api/v1/analytics/new-products").json()] == ["C"]


def test_bad_input_is_refused(api: Any, uow: UnitOfWork, shop) -> None:
    bad = api.get("/api/v1/analytics/basket", params={"level": "brand"})
    assert bad.status_code == 422 and "level must be one of sku, category" in bad.text
    assert api.get("/api/v1/analytics/basket", params={"min_lift": -1}).status_code == 422
    assert api.get("/api/v1/analytics/basket", params={"limit": 0}).status_code == 422
    assert api.get("/api/v1/members/999999/recommendations").status_code == 404
    assert api.get(f"/api/v1/members/{shop['M1']}/recommendations?limit=51").status_code == 422
    assert api.get("/api/v1/analytics/new-products?limit=0").status_code == 422
    # before any refresh there are simply no rules
    assert api.get("/api/v1/analytics/basket").json() == []


def test_two_items_bought_together_lead_to_a_third(api: Any, uow: UnitOfWork) -> None:
    store(uow)
    ids = {n: enrol(uow, phone=f"0922-000-00{n}").member.id for n in range(1, 6)}
    day = iter(range(1, 29))

    def buy(who: int, *skus: str) -> None:
        at = f"2026-06-{next(day):02d}T02:00:00+00:00"
        post_order(uow, ordered_at=at, lines=basket(*skus), member_id=ids[who])

    # {A,B,C} twice, then A, B and C once each beside D (C twice); member 5 bought A and B
    # apart: as a pair they lead to C, alone neither does (lift 1)
    buy(1, "A", "B", "C"), buy(2, "A", "B", "C"), buy(3, "A", "D"), buy(3, "B", "D")
    buy(4, "C", "D"), buy(4, "C", "D"), buy(5, "A"), buy(5, "B")
    options = RefreshOptions(as_of=AS_OF, basket=BasketPolicy(min_orders=2, min_support=0))
    assert refresh(uow, options).status == "done"
    got = api.get("/api/v1/analytics/basket", params={"level": "sku", "antecedent_items": 2})
    assert got.status_code == 200, got.text
    # 8 purchases: A, B, C and D in 4 each; each pair of A, B, C in 2, all three in 2
    rules = {(*r["antecedents"], r["consequent"]): r for r in got.json()}
    assert set(rules) == {("A", "B", "C"), ("A", "C", "B"), ("B", "C", "A")}
    ab_c = rules[("A", "B", "C")]
    assert (ab_c["orders"], ab_c["antecedent"], ab_c["support"]) == (2, "A", 2 / 8)
    assert (ab_c["confidence"], ab_c["lift"]) == (1.0, 2.0)
    # one-item rules stay as they were; `item` finds a rule by either of its antecedents
    singles = api.get("/api/v1/analytics/basket", params={"level": "sku", "antecedent_items": 1})
    assert {len(r["antecedents"]) for r in singles.json()} == {1}
    assert {r["lift"] for r in singles.json()} == {1.0}
    with_b = api.get("/api/v1/analytics/basket", params={"level": "sku", "item": "B"}).json()
    assert {(*r["antecedents"], r["consequent"]) for r in with_b} == {
        ("B", "A"), ("B", "C"), ("A", "B", "C"), ("B", "C", "A"),
    }  # fmt: skip
    bad = api.get("/api/v1/analytics/basket", params={"antecedent_items": 3})
    assert bad.status_code == 422
    # member 5 has A and B (in two purchases): the pair leads to C
    m5 = api.get(f"/api/v1/members/{ids[5]}/recommendations").json()
    assert [(r["sku"], r["because"], r["lift"]) for r in m5] == [("C", ["A", "B"], 2.0)]
    # member 3 has A and B too, and D: D is not recommended to anyone (bought with A once)
    m3 = api.get(f"/api/v1/members/{ids[3]}/recommendations").json()
    assert [(r["sku"], r["because"]) for r in m3] == [("C", ["A", "B"])]
