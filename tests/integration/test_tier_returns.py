"""A level bought with goods that come back is taken back at once (TIER-2, CHK-3): the refund
puts the member where they were before the upgrade, or as high as what they keep still
reaches; a level they qualified for without the returned goods stays."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from omo.checkout import service as checkout
from omo.checkout.refunds import RefundLine, RefundRequest, refund
from omo.checkout.schemas import CommitRequest
from omo.db import UnitOfWork
from omo.messaging.models import OutboxMessage
from omo.settings import Settings
from omo.tiers import service as tiers
from omo.tiers.models import TierChange
from tests.conftest import dump
from tests.factories import ADMIN, enrol, store


@pytest.fixture
def shop(uow: UnitOfWork) -> None:
    store(uow, "TPE-101")


def _member(uow: UnitOfWork) -> int:
    return enrol(uow, phone=f"09{uuid.uuid4().int % 10**8:08d}").member.id


def _sell(uow: UnitOfWork, mid: int, *prices: int) -> Any:
    body = {
        "channel": "pos", "store": "TPE-101", "member_id": mid,
        "external_id": uuid.uuid4().hex[:12],
        "lines": [{"sku": f"S{n}", "quantity": 1, "unit_price": str(p)}
                  for n, p in enumerate(prices)],
    }  # fmt: skip
    req = CommitRequest.model_validate(body)
    return checkout.commit(uow, req=req, principal=ADMIN, currency="TWD", region="TW")


def _return(uow: UnitOfWork, order_id: int, key: str, *lines: int) -> Any:
    req = RefundRequest(
        idempotency_key=key, lines=[RefundLine(line_no=n, quantity=1) for n in lines] or None
    )
    return refund(uow, order_id=order_id, req=req, actor="t")


def _level(uow: UnitOfWork, mid: int) -> str:
    return tiers.member_tier(uow, member_id=mid).level


def test_a_level_bought_and_brought_back_goes_at_once(uow: UnitOfWork, shop: None) -> None:
    mid = _member(uow)
    big = _sell(uow, mid, 30_000)
    assert _level(uow, mid) == "gold"
    small = _sell(uow, mid, 1_000)
    assert small.price.tier_discount == 100  # gold's 10 % while it held
    done = _return(uow, big.order.id, "r1")
    assert done.tier_lowered_to == "member" and _level(uow, mid) == "member"
    with uow.read() as s:
        last = s.scalars(
            select(TierChange).where(TierChange.member_id == mid).order_by(TierChange.id.desc())
        ).first()
        assert last is not None and (last.from_level, last.to_level) == ("gold", "member")
        assert last.reason == "upgrade returned: spend 900 misses 金卡 (spend ≥ 30000)"
        facts = [m.payload for m in s.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "TierChanged"))]  # fmt: skip
        assert {"member_id": mid, "from": "gold", "to": "member", "reason": last.reason} in facts
    # the next sale is priced at the level the member holds now
    assert _sell(uow, mid, 1_000).price.tier_discount == 0
    before = dump(uow.engine)
    again = _return(uow, big.order.id, "r1")  # the till asks again: the same answer, once
    assert again.replayed and again.tier_lowered_to == "member"
    assert dump(uow.engine) == before


def test_a_return_leaves_the_member_as_high_as_what_they_keep_reaches(
    uow: UnitOfWork, shop: None
) -> None:
    mid = _member(uow)
    sale = _sell(uow, mid, 20_000, 15_000)  # gold on 35,000
    assert _level(uow, mid) == "gold"
    part = _return(uow, sale.order.id, "p1", 2)  # 20,000 kept: silver's rule, not gold's
    assert part.tier_lowered_to == "silver" and _level(uow, mid) == "silver"
    rest = _return(uow, sale.order.id, "p2", 1)
    assert rest.tier_lowered_to == "member" and _level(uow, mid) == "member"


def test_a_level_held_without_the_returned_goods_stays(uow: UnitOfWork, shop: None) -> None:
    mid = _member(uow)
    _sell(uow, mid, 40_000)  # gold, before the sale returned below
    later = _sell(uow, mid, 5_000)
    done = _return(uow, later.order.id, "k1")
    assert done.tier_lowered_to is None and _level(uow, mid) == "gold"
    # still gold on what is kept: an upgrade the return does not undo stays
    mid2 = _member(uow)
    first = _sell(uow, mid2, 29_000)
    up = _sell(uow, mid2, 2_000)  # 31,000: gold
    assert _level(uow, mid2) == "gold"
    assert _return(uow, first.order.id, "k2", 1).tier_lowered_to == "member"
    assert _level(uow, mid2) == "member"
    assert _return(uow, up.order.id, "k3").tier_lowered_to is None


def test_a_granted_level_is_left_to_its_review(uow: UnitOfWork, shop: None) -> None:
    from datetime import date

    from omo.tiers.grants import TierGrant, grant

    mid = _member(uow)
    sale = _sell(uow, mid, 12_000)  # silver
    grant(uow, member_id=mid, actor="boss",
          req=TierGrant(level="gold", until=date(2027, 12, 31), reason="status match"))  # fmt: skip
    assert _level(uow, mid) == "gold"
    assert _return(uow, sale.order.id, "g1").tier_lowered_to is None
    assert _level(uow, mid) == "gold"


def test_the_monthly_gift_of_a_level_taken_back_goes_with_it_unless_used(
    uow: UnitOfWork, shop: None
) -> None:
    """Gold gives a monthly gift. A member buys their way to gold, gets this month's gift, and
    returns the goods: the level goes back and the unused gift is withdrawn with it. Another
    who spent their gift first keeps the sale it paid for; nothing is taken back from it."""
    from decimal import Decimal

    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate
    from omo.tiers import gifts
    from omo.tiers.policy import DEFAULT_PROGRAMME, TierProgramme

    coupons.put_template(uow, code="GOLDGIFT", template=CouponTemplate(
        name="金卡月禮", kind="amount_off", amount=Decimal(50), valid_days=31,
        per_member_limit=100))  # fmt: skip
    data = DEFAULT_PROGRAMME.model_dump(mode="json")
    for level in data["levels"]:
        if level["code"] == "gold":
            level["benefits"]["monthly_gift"] = "GOLDGIFT"
    tiers.set_programme(uow, programme=TierProgramme.model_validate(data), actor="t")
    keeps, spends = _member(uow), _member(uow)
    bought = {mid: _sell(uow, mid, 30_000) for mid in (keeps, spends)}
    assert gifts.give_monthly(uow).holding == {"GOLDGIFT": 2}
    code = {m: coupons.member_coupons(uow, member_id=m)[0].code for m in (keeps, spends)}
    body = {"channel": "pos", "store": "TPE-101", "member_id": spends, "external_id": "GIFT-USE",
            "coupon_codes": [code[spends]],
            "lines": [{"sku": "S", "quantity": 1, "unit_price": "500"}]}  # fmt: skip
    checkout.commit(uow, req=CommitRequest.model_validate(body), principal=ADMIN,
                    currency="TWD", region="TW")  # fmt: skip
    # weighed first: the quote says the level and the gift go, and nothing goes yet
    from omo.checkout.refunds import RefundLines, quote

    weighed = quote(uow, order_id=bought[keeps].order.id, req=RefundLines())
    assert (weighed.whole, weighed.tier_lowered_to, weighed.tier_gifts_withdrawn) == (
        True, "member", 1)  # fmt: skip
    assert _level(uow, keeps) == "gold"
    assert coupons.get_coupon(uow, code=code[keeps]).state == "usable"
    done = _return(uow, bought[keeps].order.id, "k")
    assert (done.tier_lowered_to, done.tier_gifts_withdrawn) == ("member", 1)
    assert coupons.get_coupon(uow, code=code[keeps]).state == "void"
    assert _return(uow, bought[keeps].order.id, "k").tier_gifts_withdrawn == 1  # a retry
    used = _return(uow, bought[spends].order.id, "s")
    assert (used.tier_lowered_to, used.tier_gifts_withdrawn) == ("member", 0)
    assert coupons.get_coupon(uow, code=code[spends]).state == "used"


def test_a_coupon_a_journey_gave_for_the_upgrade_goes_with_it(
    uow: UnitOfWork, shop: None, settings: Settings
) -> None:
    """升等禮: a tier_changed journey gives a coupon to whoever reaches gold. A member who
    bought their way there and returns the goods loses the level and the unused coupon with
    it, and the journey's 500 points (the quote says so first); one who keeps gold by another
    order keeps the coupon and the points."""

    from omo.checkout.refunds import RefundLines, quote
    from omo.coupons import service as coupons
    from omo.points import service as points

    _gold_hello(uow)
    returns, stays = _member(uow), _member(uow)
    bought = {mid: _sell(uow, mid, 30_000) for mid in (returns, stays)}
    _sell(uow, stays, 40_000)  # 36,000 at gold: gold without the first
    _journeys_pass(uow, settings)
    code = {m: coupons.member_coupons(uow, member_id=m)[0].code for m in (returns, stays)}
    weighed = quote(uow, order_id=bought[returns].order.id, req=RefundLines())
    assert (weighed.tier_lowered_to, weighed.journey_coupons_withdrawn) == ("member", 1)
    assert (weighed.journey_points_taken_back, weighed.journey_points_short) == (500, 0)
    assert coupons.get_coupon(uow, code=code[returns]).state == "usable"
    done = _return(uow, bought[returns].order.id, "r")
    assert (done.tier_lowered_to, done.journey_coupons_withdrawn) == ("member", 1)
    assert (done.journey_points_taken_back, done.journey_points_short) == (500, 0)
    assert coupons.get_coupon(uow, code=code[returns]).state == "void"
    left = points.summary(uow, member_id=returns)
    assert (left.available, left.pending) == (0, 0)  # the order's and the gift's both gone
    kept = _return(uow, bought[stays].order.id, "s")
    assert (kept.tier_lowered_to, kept.journey_coupons_withdrawn) == (None, 0)
    assert kept.journey_points_taken_back == 0
    assert coupons.get_coupon(uow, code=code[stays]).state == "usable"
    with uow.read() as s:
        assert points.check_ledger(s) == []


def test_a_used_upgrade_coupon_is_kept_back_under_the_policy(
    uow: UnitOfWork, shop: None, settings: Settings
) -> None:
    """The same 升等禮, used before half the goods come back, under journey_coupons_used:
    charge: the refund keeps its 300 back (14,700 of 15,000) and the member's stats count it."""

    from omo.commerce import returns_policy
    from omo.commerce import service as commerce
    from omo.coupons import service as coupons

    _gold_hello(uow)
    returns_policy.set_policy(uow, policy=returns_policy.Policy(journey_coupons_used="charge"),
                              actor="t")  # fmt: skip
    mid = _member(uow)
    bought = _sell(uow, mid, 15_000, 15_000)
    _journeys_pass(uow, settings)
    code = coupons.member_coupons(uow, member_id=mid)[0].code
    body = {
        "channel": "pos",
        "store": "TPE-101",
        "member_id": mid,
        "external_id": "HELLO-USE",
        "coupon_codes": [code],
        "lines": [{"sku": "S", "quantity": 1, "unit_price": "500"}],
    }
    checkout.commit(uow, req=CommitRequest.model_validate(body), principal=ADMIN,
                    currency="TWD", region="TW")  # fmt: skip
    done = _return(uow, bought.order.id, "r", 1)
    assert done.tier_lowered_to is not None and done.journey_coupons_withdrawn == 0
    assert (done.amount, done.journey_coupons_charged) == (14_700, 300)
    with uow.read() as s:
        assert commerce.check_orders_and_stats(s) == []


def _gold_hello(uow: UnitOfWork) -> None:
    """升等禮: a tier_changed journey that gives a NT$300 coupon and 500 points to whoever
    reaches gold."""
    from decimal import Decimal

    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate
    from omo.journeys import service as journeys

    coupons.put_template(uow, code="GOLDHELLO", template=CouponTemplate(
        name="升等禮", kind="amount_off", amount=Decimal(300), per_member_limit=10))  # fmt: skip
    journeys.save(uow, key="gold-hello", actor="t", raw={
        "name": "升等禮", "control_share": 0,
        "trigger": {"kind": "tier_changed", "to": ["gold"]},
        "steps": [{"type": "issue_coupon", "template": "GOLDHELLO"},
                  {"type": "award_points", "points": 500, "reason": "升等禮點數"}]})  # fmt: skip
    journeys.set_enabled(uow, key="gold-hello", enabled=True)


def _journeys_pass(uow: UnitOfWork, settings: Settings) -> None:
    """The journeys' passes that enter members on the facts, then take their steps."""
    from omo.journeys import service as journeys

    now = settings.model_copy(update={"outbox_settle_s": 0})
    for _ in range(2):
        journeys.run_jobs(uow, settings=now, adapters={}, deliver=False)
