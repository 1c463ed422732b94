"""Coupon pricing (pure): each kind, each restriction, each refusal reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from omo.coupons.rules import (
    Basket,
    BasketLine,
    CouponState,
    CouponTemplate,
    Priced,
    Refused,
    price,
    state,
)

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
BASKET = Basket(
    channel="web",
    store=None,
    lines=(
        BasketLine("APP-1", "服飾", 2, Decimal("490")),  # 980
        BasketLine("BEA-1", "美妝保養", 1, Decimal("650"), Decimal("50")),  # 600
    ),
    shipping_fee=Decimal("60"),
)
MINE = CouponState(member_id=7, valid_from=None, valid_until=None, uses=0, max_uses=1,
                   status="active")  # fmt: skip


def t(**kw: Any) -> CouponTemplate:
    return CouponTemplate.model_validate({"name": "x", **kw})


def run(template: CouponTemplate, state: CouponState = MINE, basket: Basket = BASKET,
        member: int | None = 7, left: int | None = None) -> Priced | Refused:  # fmt: skip
    return price(template, state, basket, member_id=member, now=NOW, redemptions_left=left)


def test_each_kind() -> None:
    assert run(t(kind="amount_off", amount="100")) == Priced(
        Decimal(100), Decimal(0), None, Decimal(1580)
    )
    assert run(t(kind="spend_get_off", spend="500", amount="100")).discount == Decimal(100)  # type: ignore[union-attr]
    assert run(t(kind="percent_off", percent="10")).discount == Decimal("158.00")  # type: ignore[union-attr]
    capped = run(t(kind="percent_off", percent="50", max_discount="200"))
    assert capped.discount == Decimal(200)  # type: ignore[union-attr]
    free = run(t(kind="free_item", free_sku="APP-1"))
    assert (free.discount, free.free_sku) == (Decimal(490), "APP-1")  # type: ignore[union-attr]
    # one unit as the basket prices it: 650 listed, 50 off at the member's level → 600 free,
    # not 650 (which would take 50 off the other goods too)
    cheaper = run(t(kind="free_item", free_sku="BEA-1"))
    assert cheaper.discount == Decimal(600)  # type: ignore[union-attr]
    thirds = Basket("web", None, (BasketLine("MUG", None, 3, Decimal(100), Decimal(10)),))
    assert run(t(kind="free_item", free_sku="MUG"), basket=thirds).discount == Decimal("96.67")  # type: ignore[union-attr]
    ship = run(t(kind="free_shipping"))
    assert (ship.discount, ship.shipping_discount) == (Decimal(0), Decimal(60))  # type: ignore[union-attr]


def test_a_repeating_spend_coupon_takes_its_amount_for_every_step() -> None:
    """每滿500減50 on the 1,580: three steps, 150; capped at 100 (最高折100), 100; on 服飾 alone
    (980), one step; the same coupon once (not repeating), 50; under 500, refused as 滿500."""
    every = {"kind": "spend_get_off", "spend": "500", "amount": "50", "repeat": True}
    assert run(t(**every)).discount == Decimal(150)  # type: ignore[union-attr]
    assert run(t(**every, max_discount="100")).discount == Decimal(100)  # type: ignore[union-attr]
    assert run(t(**every, categories=["服飾"])).discount == Decimal(50)  # type: ignore[union-attr]
    assert run(t(**{**every, "repeat": False})).discount == Decimal(50)  # type: ignore[union-attr]
    small = Basket("web", None, (BasketLine("A", None, 1, Decimal(499)),))
    refused = run(t(**every), basket=small)
    assert isinstance(refused, Refused) and refused.reason == "min_spend_not_met"
    exactly = Basket("web", None, (BasketLine("A", None, 2, Decimal(500)),))
    assert run(t(**every), basket=exactly).discount == Decimal(100)  # type: ignore[union-attr]


def test_a_coupon_of_thresholds_takes_what_the_highest_reached_takes() -> None:
    """階梯滿額 滿500減50, 滿1000減120, 滿1500減200: the 1,580 takes 200; 服飾 alone (980) 50;
    exactly 1,000 takes 120; under 500 refused as 滿500."""
    ladder = {"kind": "spend_get_off", "spend": "500", "amount": "50",
              "steps": [["1000", "120"], ["1500", "200"]]}  # fmt: skip
    assert run(t(**ladder)).discount == Decimal(200)  # type: ignore[union-attr]
    assert run(t(**ladder, categories=["服飾"])).discount == Decimal(50)  # type: ignore[union-attr]
    exactly = Basket("web", None, (BasketLine("A", None, 2, Decimal(500)),))
    assert run(t(**ladder), basket=exactly).discount == Decimal(120)  # type: ignore[union-attr]
    small = Basket("web", None, (BasketLine("A", None, 1, Decimal(499)),))
    refused = run(t(**ladder), basket=small)
    assert isinstance(refused, Refused) and refused.reason == "min_spend_not_met"


def test_the_second_at_a_percent_off_takes_it_off_the_cheapest_of_each_pair() -> None:
    """第二件6折 (nth_item, percent 40, min_items 2) on two APP-1 (490 each) and a BEA-1 (600
    after 50 off): the units dearest first are 600, 490, 490 — the second, 490, takes 40 %
    (196); on 服飾 alone the pair of 490 gives the same; with a third in four (2 APP-1, 2 of
    600) the pairs are (600, 600) and (490, 490): 40 % of 600 + 490. One unit is refused, as
    any coupon asking for two. A line of 100,000 units is counted, not expanded."""
    from omo.coupons.rules import nth_units

    second = t(kind="nth_item", percent="40", min_items=2)
    assert run(second).discount == Decimal("196.00")  # type: ignore[union-attr]
    assert run(t(kind="nth_item", percent="40", min_items=2, categories=["服飾"])).discount == (  # type: ignore[union-attr]
        Decimal("196.00"))  # fmt: skip
    four = Basket("web", None, (BasketLine("A", None, 2, Decimal(490)),
                                BasketLine("B", None, 2, Decimal(600))))  # fmt: skip
    assert run(second, basket=four).discount == Decimal("436.00")  # type: ignore[union-attr]
    one = Basket("web", None, (BasketLine("A", None, 1, Decimal(490)),))
    refused = run(second, basket=one)
    assert isinstance(refused, Refused) and refused.reason == "min_items_not_met"
    many = [BasketLine("A", None, 100_000, Decimal(10)), BasketLine("B", None, 3, Decimal(50))]
    assert nth_units(many, 2) == Decimal(50) + Decimal(10) * 50_000  # 50, 50 | 50, 10 | 10 …
    with pytest.raises(ValidationError, match="min_items: required"):
        t(kind="nth_item", percent="40")


def test_a_number_of_goods_counts_the_units_it_covers() -> None:
    """任選3件9折 on 服飾: the two APP-1 are 2 (the 美妝保養 does not count), refused with both
    numbers; on everything, 3. 買一送一: a free APP-1 on 服飾 with two of them."""
    short = run(t(kind="percent_off", percent="10", min_items=3, categories=["服飾"]))
    assert isinstance(short, Refused) and (short.reason, short.ctx) == (
        "min_items_not_met", {"min_items": 3, "items": 2})  # fmt: skip
    assert run(t(kind="percent_off", percent="10", min_items=3)).discount == Decimal("158.00")  # type: ignore[union-attr]
    one_free = t(kind="free_item", free_sku="APP-1", categories=["服飾"], min_items=2)
    assert run(one_free).discount == Decimal(490)  # type: ignore[union-attr]
    alone = Basket("web", None, (BasketLine("APP-1", "服飾", 1, Decimal("490")),))
    assert isinstance(run(one_free, basket=alone), Refused)
    with pytest.raises(ValidationError, match="min_items"):
        t(kind="amount_off", amount="100", min_items=1)


def test_amount_off_never_exceeds_what_qualifies() -> None:
    only_beauty = t(kind="amount_off", amount="1000", categories=["美妝保養"])
    assert run(only_beauty).discount == Decimal(600)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("template", "state", "member", "left", "reason"),
    [
        ({"kind": "amount_off", "amount": "1"}, {"status": "void"}, 7, None, "void"),
        ({"kind": "amount_off", "amount": "1"}, {"uses": 1}, 7, None, "already_used"),
        ({"kind": "amount_off", "amount": "1"}, {}, 8, None, "wrong_member"),
        ({"kind": "amount_off", "amount": "1"}, {}, None, None, "wrong_member"),
        ({"kind": "amount_off", "amount": "1"}, {"valid_from": NOW + timedelta(seconds=1)}, 7, None, "not_yet_valid"),
        ({"kind": "amount_off", "amount": "1"}, {"valid_until": NOW}, 7, None, "expired"),
        ({"kind": "amount_off", "amount": "1"}, {}, 7, 0, "budget_exhausted"),
        ({"kind": "amount_off", "amount": "1", "channels": ["pos"]}, {}, 7, None, "channel_not_allowed"),
        ({"kind": "amount_off", "amount": "1", "stores": ["TPE-101"]}, {}, 7, None, "store_not_allowed"),
        ({"kind": "amount_off", "amount": "1", "categories": ["食品"]}, {}, 7, None, "no_eligible_items"),
        ({"kind": "amount_off", "amount": "1", "min_spend": "1581"}, {}, 7, None, "min_spend_not_met"),
        ({"kind": "spend_get_off", "spend": "700", "amount": "100", "categories": ["美妝保養"]}, {}, 7, None, "min_spend_not_met"),
        ({"kind": "free_item", "free_sku": "HOM-9"}, {}, 7, None, "free_item_missing"),
        ({"kind": "percent_off", "percent": "10", "min_items": 99}, {}, 7, None, "min_items_not_met"),
    ],
)  # fmt: skip
def test_each_refusal_names_its_reason(
    template: dict[str, Any],
    state: dict[str, Any],
    member: int | None,
    left: int | None,
    reason: str,
) -> None:
    s = CouponState(**{**MINE.__dict__, **state})
    result = run(t(**template), s, member=member, left=left)
    assert isinstance(result, Refused)
    assert result.reason == reason


def test_a_coupon_of_some_days_or_hours_is_used_then_only() -> None:
    """週末限定 and 下午茶 14:00–17:00, told in Taipei: 16:30 UTC on Friday 5 June is Saturday
    00:30 there; 06:00 UTC is 14:00 (in), 09:00 UTC is 17:00 (out); hours past midnight
    (22:00–02:00) hold at 01:00 and not at 03:00. An expired coupon says so first."""
    weekend = t(kind="amount_off", amount="50", weekdays=[6, 7])
    tea = t(kind="amount_off", amount="50", hours=["14:00", "17:00"])
    night = t(kind="amount_off", amount="50", hours=["22:00", "02:00"])

    def on(template: CouponTemplate, at: datetime, c: CouponState = MINE) -> str | None:
        got = price(template, c, BASKET, member_id=7, now=at, redemptions_left=None)
        return got.reason if isinstance(got, Refused) else None

    friday = datetime(2026, 6, 5, 4, 0, tzinfo=UTC)  # 12:00 on Friday in Taipei
    assert on(weekend, friday) == "not_today"
    assert on(weekend, datetime(2026, 6, 5, 16, 30, tzinfo=UTC)) is None
    refused = price(weekend, MINE, BASKET, member_id=7, now=friday, redemptions_left=None)
    assert isinstance(refused, Refused) and refused.ctx == {"weekdays": "6, 7"}
    assert on(tea, datetime(2026, 6, 5, 6, 0, tzinfo=UTC)) is None
    assert on(tea, datetime(2026, 6, 5, 9, 0, tzinfo=UTC)) == "outside_hours"
    assert on(night, datetime(2026, 6, 5, 17, 0, tzinfo=UTC)) is None  # 01:00
    assert on(night, datetime(2026, 6, 5, 19, 0, tzinfo=UTC)) == "outside_hours"  # 03:00
    gone = CouponState(**{**MINE.__dict__, "valid_until": friday})
    assert on(weekend, friday, gone) == "expired"
    for bad in ({"hours": ["14:00", "14:00"]}, {"weekdays": [0]}, {"timezone": "Mars/Base"}):
        with pytest.raises(ValidationError):
            t(kind="amount_off", amount="1", **bad)


def test_a_coupon_for_a_level_or_a_first_order_asks_of_its_holder() -> None:
    """金卡以上專屬 and 首購禮: a guest is refused either; a silver member the gold one, naming
    both levels; a member with an earlier order the first-order one. A used or expired coupon
    says so first."""
    from omo.coupons.rules import Holder

    shared = CouponState(**{**MINE.__dict__, "member_id": None})
    gold = t(kind="amount_off", amount="100", min_level="gold")
    first = t(kind="amount_off", amount="100", first_order_only=True)
    silver = Holder("silver", frozenset({"member", "silver"}), earlier_orders=True)
    diamond = Holder("diamond", frozenset({"member", "silver", "gold", "diamond"}), False)

    def on(template: CouponTemplate, h: Holder | None, c: CouponState = shared) -> str | None:
        got = price(template, c, BASKET, member_id=7, now=NOW, redemptions_left=None, holder=h)
        return got.reason if isinstance(got, Refused) else None

    assert [on(gold, None), on(first, None)] == ["members_only", "members_only"]
    assert on(gold, silver) == "tier_too_low" and on(gold, diamond) is None
    refused = price(gold, shared, BASKET, member_id=7, now=NOW, redemptions_left=None,
                    holder=silver)  # fmt: skip
    assert isinstance(refused, Refused) and refused.ctx == {"level": "gold", "now": "silver"}
    assert on(first, silver) == "not_first_order" and on(first, diamond) is None
    assert on(first, silver, CouponState(**{**MINE.__dict__, "uses": 1})) == "already_used"
    assert t(kind="amount_off", amount="1").asks_of_member is False
    with pytest.raises(ValidationError, match="min_level"):
        t(kind="amount_off", amount="1", min_level="")


def test_excluded_categories_neither_count_nor_take_the_discount() -> None:
    """全館9折，美妝保養除外: 10 % of the 980 of 服飾 alone; a 滿1000 on it is not met by the
    美妝保養 beside it; a free item of an excluded category is not given; a category both named
    and excluded is refused."""
    most = run(t(kind="percent_off", percent="10", excluded_categories=["美妝保養"]))
    assert isinstance(most, Priced)
    assert (most.discount, most.eligible, most.excluded) == (Decimal("98.00"), 980, ("美妝保養",))
    short = run(t(kind="amount_off", amount="100", min_spend="1000",
                  excluded_categories=["美妝保養"]))  # fmt: skip
    assert isinstance(short, Refused) and short.reason == "min_spend_not_met"
    gift = run(t(kind="free_item", free_sku="BEA-1", excluded_categories=["美妝保養"]))
    assert isinstance(gift, Refused) and gift.reason == "free_item_missing"
    with pytest.raises(ValueError, match="excluded_categories"):
        t(kind="amount_off", amount="100", categories=["服飾"], excluded_categories=["服飾"])


def test_free_shipping_needs_shipping_to_waive() -> None:
    free = Basket("web", None, BASKET.lines, Decimal(0))
    assert run(t(kind="free_shipping"), basket=free) == Refused(
        "no_shipping", "nothing to take off: this order ships free"
    )


def test_a_shared_code_is_anyones() -> None:
    shared = CouponState(
        member_id=None, valid_from=None, valid_until=None, uses=5, max_uses=100, status="active"
    )
    assert isinstance(run(t(kind="amount_off", amount="50"), shared, member=None), Priced)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "amount_off"}, "amount: required"),
        ({"kind": "percent_off", "percent": "120"}, "less than or equal"),
        ({"kind": "spend_get_off", "amount": "100"}, "spend: required"),
        ({"kind": "spend_get_off", "amount": "500", "spend": "500"}, "less than spend"),
        ({"kind": "free_item"}, "free_sku: required"),
        ({"kind": "amount_off", "amount": "1", "valid_from": "2026-02-01T00:00:00Z",
          "valid_until": "2026-01-01T00:00:00Z"}, "after valid_from"),
        ({"kind": "bogof"}, "Input should be"),
        ({"kind": "percent_off", "percent": "10", "repeat": True}, "only for spend_get_off"),
        ({"kind": "spend_get_off", "spend": "1000", "amount": "100", "repeat": True,
          "max_discount": "50"}, "at least amount"),
        ({"kind": "percent_off", "percent": "10", "steps": [["2000", "250"]]},
         "only for spend_get_off"),
        ({"kind": "spend_get_off", "spend": "1000", "amount": "100", "repeat": True,
          "steps": [["2000", "250"]]}, "do not repeat"),
        ({"kind": "spend_get_off", "spend": "1000", "amount": "100",
          "steps": [["2000", "250"], ["1500", "300"]]}, "ask more than the one before"),
        ({"kind": "spend_get_off", "spend": "1000", "amount": "100",
          "steps": [["2000", "80"]]}, "take more"),
        ({"kind": "spend_get_off", "spend": "1000", "amount": "100",
          "steps": [["2000", "2000"]]}, "less than its spend"),
    ],
)  # fmt: skip
def test_incomplete_templates_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        t(**data)


def test_stacking_in_one_order() -> None:
    from omo.coupons.rules import InOrder, stacking

    alone = t(kind="amount_off", amount="100", combinable=False)
    plain = t(kind="amount_off", amount="50")
    two = t(kind="amount_off", amount="50", per_order_limit=2)
    assert stacking(alone, "ALONE", []) is None  # first in the order: fine
    refused = stacking(alone, "ALONE", [InOrder("OTHER", True)])
    assert isinstance(refused, Refused) and refused.reason == "not_combinable"
    after = stacking(plain, "PLAIN", [InOrder("ALONE", False)])
    assert isinstance(after, Refused) and after.reason == "not_combinable"
    again = stacking(plain, "PLAIN", [InOrder("PLAIN", True)])
    assert isinstance(again, Refused) and again.reason == "per_order_limit"
    assert stacking(plain, "PLAIN", [InOrder("OTHER", True)]) is None
    assert stacking(two, "TWO", [InOrder("TWO", True)]) is None
    third = stacking(two, "TWO", [InOrder("TWO", True), InOrder("TWO", True)])
    assert isinstance(third, Refused) and "at most 2" in third.message
    # two 任選3件 coupons in one order ask for 6 of the goods they cover (服飾 here)
    any3 = t(kind="percent_off", percent="10", min_items=3, per_order_limit=2,
             categories=["服飾"])  # fmt: skip
    five = Basket("pos", None, (BasketLine("APP-1", "服飾", 5, Decimal(100)),
                                BasketLine("BEA-1", "美妝保養", 3, Decimal(100))))  # fmt: skip
    six = Basket("pos", None, (BasketLine("APP-1", "服飾", 6, Decimal(100)),))
    assert stacking(any3, "ANY3", [InOrder("OTHER", True)], five) is None
    second = stacking(any3, "ANY3", [InOrder("ANY3", True)], five)
    assert isinstance(second, Refused) and (second.reason, second.ctx) == (
        "min_items_not_met", {"min_items": 6, "items": 5})  # fmt: skip
    assert stacking(any3, "ANY3", [InOrder("ANY3", True)], six) is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ABC"), st.booleans(), st.integers(min_value=1, max_value=3)),
        max_size=8,
    )
)
def test_whatever_the_codes_the_order_keeps_to_every_rule(
    codes: list[tuple[str, bool, int]],
) -> None:
    """Coupons offered in any order, each template with its own rules (the first of a template
    decides them, as one template has one definition): what is applied never holds a coupon
    that is not combined with others beside another, nor more of a template than it allows."""
    from omo.coupons.rules import InOrder, stacking

    rules: dict[str, tuple[bool, int]] = {}
    applied: list[InOrder] = []
    for template, combinable, limit in codes:
        ok, most = rules.setdefault(template, (combinable, limit))
        definition = t(kind="amount_off", amount="10", combinable=ok, per_order_limit=most)
        if stacking(definition, template, applied) is None:
            applied.append(InOrder(template, ok))
    if any(not a.combinable for a in applied):
        assert len(applied) == 1
    for template, (_ok, most) in rules.items():
        assert sum(1 for a in applied if a.template == template) <= most
    if codes:
        assert applied  # the first coupon offered always stands


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from(["active", "void"]),
    uses=st.integers(min_value=0, max_value=3),
    max_uses=st.integers(min_value=1, max_value=3),
    starts=st.one_of(st.none(), st.integers(min_value=-3, max_value=3)),
    ends=st.one_of(st.none(), st.integers(min_value=-3, max_value=3)),
)
def test_a_coupon_listed_as_usable_is_one_the_till_takes(
    status: str, uses: int, max_uses: int, starts: int | None, ends: int | None
) -> None:
    """What a card and a till list (state usable) is exactly what the rules take from its own
    member on a basket it fits; each other state is the refusal of the same name."""
    day = timedelta(days=1)
    c = CouponState(
        member_id=7, uses=uses, max_uses=max_uses, status=status,
        valid_from=None if starts is None else NOW + starts * day,
        valid_until=None if ends is None else NOW + ends * day,
    )  # fmt: skip
    result = run(t(kind="amount_off", amount="100"), c)
    now = state(c, NOW)
    if now == "usable":
        assert isinstance(result, Priced)
    else:
        assert isinstance(result, Refused)
        assert result.reason == {"used": "already_used"}.get(now, now)
