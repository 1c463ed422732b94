"""Coupons in the database (SQLite + PostgreSQL): issuing with limits and budgets, codes that
are unguessable and forgiving to type, one use under a 32-till race, reversal, QR, KPIs, API."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.coupons.schemas import BasketIn
from omo.db import UnitOfWork
from omo.shared.errors import NotFound, ValidationFailed
from tests.factories import enrol

BASKET = BasketIn.model_validate(
    {"channel": "pos", "store": "TPE-101",
     "lines": [{"sku": "APP-1", "category": "服飾", "quantity": 1, "unit_price": "800"}]}
)  # fmt: skip


def template(uow: UnitOfWork, code: str = "WELCOME100", **kw: Any) -> None:
    data = {"name": "滿500減100", "kind": "spend_get_off", "spend": "500", "amount": "100", **kw}
    coupons.put_template(uow, code=code, template=CouponTemplate.model_validate(data))


def members_(uow: UnitOfWork, n: int) -> list[int]:
    return [enrol(uow, phone=f"0912-000-{k:03d}").member.id for k in range(n)]


def test_issue_is_idempotent_and_honours_limits(uow: UnitOfWork) -> None:
    template(uow, max_issued=3)
    ids = members_(uow, 4)
    first = coupons.issue(uow, template_code="WELCOME100", member_ids=ids[:2], key="launch")
    again = coupons.issue(uow, template_code="WELCOME100", member_ids=ids[:2], key="launch")
    assert [c.code for c in first.issued] == [c.code for c in again.issued]
    more = coupons.issue(
        uow, template_code="WELCOME100", member_ids=[ids[0], *ids[2:], 999_999], key="wave-2"
    )
    assert more.refused == {
        ids[0]: "per_member_limit",
        ids[3]: "budget_exhausted",
        999_999: "no_such_member",
    }
    assert len(more.issued) == 1
    codes = {c.code for c in [*first.issued, *more.issued]}
    assert len(codes) == 3
    assert all(len(c) == 14 and c[4] == c[9] == "-" for c in codes)


def test_a_coupon_valid_to_the_end_of_its_month(uow: UnitOfWork) -> None:
    """當月有效: issued on 15 December in Taipei, valid until 1 January 00:00 there; with
    valid_days 5, those end first; issued at 23:30 on the last day of February, until 00:00 on
    1 March (half an hour). Usable on 31 December at 23:59 Taipei time, expired a minute later."""
    from datetime import UTC, datetime

    from omo.shared import clock

    template(uow, code="MONTH", valid_to_month_end=True)
    template(uow, code="MONTH5", valid_to_month_end=True, valid_days=5)
    mid, other = members_(uow, 2)

    def issued(code: str, at: datetime, who: int = mid) -> datetime | None:
        clock.set_clock(lambda: at)
        return coupons.issue(uow, template_code=code, member_ids=[who],
                             key=f"{code}-{at}").issued[0].valid_until  # fmt: skip

    mid_december = datetime(2026, 12, 15, 2, tzinfo=UTC)  # 10:00 in Taipei
    assert issued("MONTH", mid_december) == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert issued("MONTH5", mid_december) == datetime(2026, 12, 20, 2, tzinfo=UTC)
    late = datetime(2027, 2, 28, 15, 30, tzinfo=UTC)  # 23:30 on 28 February in Taipei
    assert issued("MONTH", late, other) == datetime(2027, 2, 28, 16, tzinfo=UTC)
    (held,) = [c for c in coupons.member_coupons(uow, member_id=mid) if c.template == "MONTH"]
    clock.set_clock(lambda: datetime(2026, 12, 31, 15, 59, tzinfo=UTC))
    assert coupons.check(uow, code=held.code, basket=BASKET, member_id=mid).usable
    clock.set_clock(lambda: datetime(2026, 12, 31, 16, 0, tzinfo=UTC))
    assert coupons.check(uow, code=held.code, basket=BASKET, member_id=mid).reason == "expired"
    # a last day without an offset is UTC, as coupons always stored it: issuing beside
    # valid_days no longer fails comparing it with an aware moment
    template(uow, code="NAIVE", valid_until="2027-03-02T00:00:00", valid_days=30)
    assert issued("NAIVE", late, other) == datetime(2027, 3, 2, tzinfo=UTC)


def test_a_code_is_used_once_and_a_retry_is_a_replay(uow: UnitOfWork) -> None:
    template(uow)
    (mid,) = members_(uow, 1)
    code = coupons.issue(uow, template_code="WELCOME100", member_ids=[mid], key="k").issued[0].code
    typed = code.lower().replace("-", " ").replace("0", "o")
    assert coupons.check(uow, code=typed, basket=BASKET, member_id=mid).discount == Decimal(100)
    used = coupons.redeem(uow, code=typed, basket=BASKET, member_id=mid, key="till-1:42")
    replay = coupons.redeem(uow, code=code, basket=BASKET, member_id=mid, key="till-1:42")
    assert used == replay
    with pytest.raises(ValidationFailed) as info:
        coupons.redeem(uow, code=code, basket=BASKET, member_id=mid, key="till-2:43")
    assert info.value.code == "already_used"
    check = coupons.check(uow, code=code, basket=BASKET, member_id=mid)
    assert (check.usable, check.reason) == (False, "already_used")
    coupons.reverse(uow, key="till-1:42")
    twice = coupons.reverse(uow, key="till-1:42")  # a retried refund reverses once
    assert twice.reversed_at is not None
    assert coupons.get_coupon(uow, code=code).uses == 0
    assert coupons.kpis(uow)[0].redeemed == 0
    assert coupons.check(uow, code=code, basket=BASKET, member_id=mid).usable
    with pytest.raises(NotFound):
        coupons.check(uow, code="ZZZZ-ZZZZ-ZZZZ", basket=BASKET, member_id=mid)


def test_a_redemption_key_names_one_coupon(uow: UnitOfWork) -> None:
    from omo.shared.errors import Conflict

    template(uow, "A")
    template(uow, "B")
    (mid,) = members_(uow, 1)
    a = coupons.issue(uow, template_code="A", member_ids=[mid], key="k").issued[0].code
    b = coupons.issue(uow, template_code="B", member_ids=[mid], key="k").issued[0].code
    coupons.redeem(uow, code=a, basket=BASKET, member_id=mid, key="till-1:7")
    with pytest.raises(Conflict):
        coupons.redeem(uow, code=b, basket=BASKET, member_id=mid, key="till-1:7")
    assert coupons.get_coupon(uow, code=b).uses == 0


def test_refusals_change_nothing(uow: UnitOfWork) -> None:
    template(uow, channels=["web"])
    (mid,) = members_(uow, 1)
    code = coupons.issue(uow, template_code="WELCOME100", member_ids=[mid], key="k").issued[0].code
    with pytest.raises(ValidationFailed) as info:
        coupons.redeem(uow, code=code, basket=BASKET, member_id=mid, key="k1")
    assert info.value.code == "channel_not_allowed"
    assert coupons.get_coupon(uow, code=code).uses == 0
    assert coupons.kpis(uow)[0].redeemed == 0


def test_a_shared_code_once_per_member_within_budget(uow: UnitOfWork) -> None:
    template(uow, "FB200", shared_code=True, max_redemptions=2)
    a, b, c = members_(uow, 3)
    code = coupons.shared_code(uow, template_code="FB200").code
    assert coupons.shared_code(uow, template_code="FB200").code == code
    coupons.redeem(uow, code=code, basket=BASKET, member_id=a, key="a")
    with pytest.raises(ValidationFailed, match="already"):
        coupons.redeem(uow, code=code, basket=BASKET, member_id=a, key="a2")
    coupons.redeem(uow, code=code, basket=BASKET, member_id=b, key="b")
    with pytest.raises(ValidationFailed) as info:
        coupons.redeem(uow, code=code, basket=BASKET, member_id=c, key="c")
    assert info.value.code in ("budget_exhausted", "already_used")


@pytest.mark.postgres
def test_thirty_two_tills_scanning_one_code_use_it_once(uow: UnitOfWork, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    template(uow)
    (mid,) = members_(uow, 1)
    code = coupons.issue(uow, template_code="WELCOME100", member_ids=[mid], key="k").issued[0].code
    outcomes: list[str] = []
    barrier = threading.Barrier(32)

    def scan(n: int) -> None:
        barrier.wait()
        try:
            coupons.redeem(uow, code=code, basket=BASKET, member_id=mid, key=f"till-{n}")
            outcomes.append("used")
        except ValidationFailed as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=scan, args=(n,)) for n in range(32)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert outcomes.count("used") == 1
    assert set(outcomes) == {"used", "already_used"}
    assert coupons.get_coupon(uow, code=code).uses == 1
    assert coupons.kpis(uow)[0].redeemed == 1


def test_the_coupons_api(api: TestClient, uow: UnitOfWork) -> None:
    body = {"name": "9 折", "kind": "percent_off", "percent": "10", "valid_days": 30}
    assert api.put("/api/v1/coupons/templates/TEN", json=body).status_code == 201
    assert api.put("/api/v1/coupons/templates/TEN", json=body).status_code == 200
    bad = api.put("/api/v1/coupons/templates/BAD", json={"name": "x", "kind": "amount_off"})
    assert bad.status_code == 422
    assert "amount" in bad.json()["detail"][0]["msg"]
    both = api.put("/api/v1/coupons/templates/BOTH", json={
        **body, "categories": ["禮券"], "excluded_categories": ["禮券"]})  # fmt: skip
    assert both.status_code == 422 and "excluded_categories" in both.json()["detail"][0]["msg"]
    assert "BOTH" not in {t["code"] for t in api.get("/api/v1/coupons/templates").json()}
    plat = api.put("/api/v1/coupons/templates/PLAT", json={**body, "min_level": "platinum"})
    assert plat.status_code == 422 and plat.json()["detail"][0]["loc"][-1] == "min_level"
    assert "PLAT" not in {t["code"] for t in api.get("/api/v1/coupons/templates").json()}
    gold = api.put("/api/v1/coupons/templates/GOLD", json={**body, "min_level": "gold"})
    assert gold.status_code == 201 and gold.json()["template"]["min_level"] == "gold"
    same = api.put("/api/v1/coupons/templates/TEA", json={**body, "hours": ["14:00", "14:00"]})
    assert same.status_code == 422 and "hours" in same.json()["detail"][0]["msg"]
    one = api.put("/api/v1/coupons/templates/ANY1", json={**body, "min_items": 1})
    assert one.status_code == 422 and one.json()["detail"][0]["loc"][-1] == "min_items"
    three = api.put("/api/v1/coupons/templates/ANY3", json={**body, "min_items": 3})
    assert three.status_code == 201 and three.json()["template"]["min_items"] == 3
    loop = api.put("/api/v1/coupons/templates/LOOP", json={**body, "repeat": True})
    assert loop.status_code == 422 and "only for spend_get_off" in loop.json()["detail"][0]["msg"]
    assert "LOOP" not in {t["code"] for t in api.get("/api/v1/coupons/templates").json()}
    every = api.put("/api/v1/coupons/templates/EVERY", json={
        "name": "每滿千折百", "kind": "spend_get_off", "spend": "1000", "amount": "100",
        "repeat": True})  # fmt: skip
    assert every.status_code == 201 and every.json()["template"]["repeat"] is True
    tea = api.put("/api/v1/coupons/templates/TEA", json={**body, "hours": ["14:00", "17:00"]})
    assert tea.status_code == 201 and tea.json()["template"]["hours"] == ["14:00:00", "17:00:00"]
    (mid,) = members_(uow, 1)
    issued = api.post(
        "/api/v1/coupons/templates/TEN/issue", json={"member_ids": [mid], "key": "k"}
    ).json()
    code = issued["issued"][0]["code"]
    assert issued["issued"][0]["valid_until"] is not None
    (held,) = api.get(f"/api/v1/members/{mid}/coupons").json()
    assert (held["code"], held["status"], held["state"]) == (code, "active", "usable")
    qr = api.get(f"/api/v1/coupons/{code}/qr.png")
    assert (qr.status_code, qr.headers["content-type"], qr.content[:4]) == (
        200,
        "image/png",
        b"\x89PNG",
    )
    basket = {
        "channel": "web",
        "lines": [{"sku": "A", "quantity": 2, "unit_price": "450"}],
        "shipping_fee": "60",
    }
    check = api.post(
        f"/api/v1/coupons/{code}/check", json={"member_id": mid, "basket": basket}
    ).json()
    assert (check["usable"], check["discount"]) == (True, "90.00")
    assert check["terms"]["min_spend"] is None and check["terms"]["min_items"] is None
    used = api.post(
        f"/api/v1/coupons/{code}/redeem",
        json={"member_id": mid, "basket": basket, "idempotency_key": "w-1"},
    )
    assert used.status_code == 200
    again = api.post(
        f"/api/v1/coupons/{code}/redeem",
        json={"member_id": mid, "basket": basket, "idempotency_key": "w-2"},
    )
    assert again.status_code == 422
    assert again.json()["detail"][0]["type"] == "already_used"
    (held,) = api.get(f"/api/v1/members/{mid}/coupons").json()
    assert (held["status"], held["state"]) == ("active", "used")  # kept, no longer usable
    kpis = {k["code"]: k for k in api.get("/api/v1/coupons/kpis").json()}
    assert kpis["TEN"]["discount_cost"] == "90.00"
    assert api.get("/api/v1/coupons/NOPE-NOPE-NOPE").status_code == 404
    # refused, the answer still says what the coupon asks: 3 items where 2 are in the basket
    any3 = api.post("/api/v1/coupons/templates/ANY3/issue", json={"member_ids": [mid], "key": "a"})
    short = api.post(f"/api/v1/coupons/{any3.json()['issued'][0]['code']}/check",
                     json={"member_id": mid, "basket": basket}).json()  # fmt: skip
    assert (short["usable"], short["reason"], short["terms"]["min_items"]) == (
        False, "min_items_not_met", 3)  # fmt: skip


def test_a_till_of_whole_dollars_takes_whole_amounts_off(
    settings: Any, uow: UnitOfWork, api: TestClient
) -> None:
    """OMO_PRICE_UNIT=1: a coupon of NT$50.5 off, a step or a cap of cents, or a reward's cash
    of NT$49.5 is refused by its field and writes nothing (a till of whole dollars cannot take
    them off); whole amounts are saved. A till of cents takes the cents."""
    from omo.apikeys.service import create_key
    from omo.app import create_app
    from omo.settings import Settings
    from tests.conftest import dump

    app = create_app(Settings(database_url=settings.database_url, price_unit=Decimal(1)))
    key = create_key(uow, name="admin", store_code=None, scopes=None).key
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as whole:
        before = dump(uow.engine)
        for body, field in (
            ({"name": "折50.5", "kind": "amount_off", "amount": "50.5"}, "amount"),
            ({"name": "階梯", "kind": "spend_get_off", "spend": "1000", "amount": "100",
              "steps": [["2000", "250"], ["3000", "399.5"]]}, "steps.1.1"),
            ({"name": "9折", "kind": "percent_off", "percent": "10",
              "max_discount": "99.9"}, "max_discount"),
        ):  # fmt: skip
            refused = whole.put("/api/v1/coupons/templates/CENTS", json=body)
            assert refused.status_code == 422, refused.text
            detail = refused.json()["detail"][0]
            assert (detail["loc"], detail["type"]) == (["body", *field.split(".")], "invalid")
            assert Decimal(detail["ctx"]["unit"]) == 1
        cash = whole.put("/api/v1/rewards/TOTE", json={"name": "袋", "points": 300, "cash": "49.5"})
        assert cash.status_code == 422 and cash.json()["detail"][0]["loc"] == ["body", "cash"]
        assert dump(uow.engine) == before
        saved = whole.put("/api/v1/coupons/templates/WHOLE",
                          json={"name": "折50", "kind": "amount_off", "amount": "50"})  # fmt: skip
        assert saved.status_code == 201, saved.text
        assert whole.put("/api/v1/rewards/TOTE", json={
            "name": "袋", "points": 300, "cash": "49"}).status_code == 201  # fmt: skip
    app.state.engine.dispose()
    cents = api.put("/api/v1/coupons/templates/CENTS",
                    json={"name": "折50.5", "kind": "amount_off", "amount": "50.5"})  # fmt: skip
    assert cents.status_code == 201, cents.text
