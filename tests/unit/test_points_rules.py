"""Points rules (pure): what an order earns and why, when points become spendable and expire."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from omo.points.rules import (
    LineFacts,
    OrderFacts,
    PointsRules,
    Promotion,
    available_at,
    expires_at,
    max_redeemable,
    points_for_order,
    redeem_value,
    spend_bonus,
)

AT = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # 12:00 in Taipei
TPE = ZoneInfo("Asia/Taipei")


def order(*lines: tuple[str | None, str], channel: str = "pos", discount: str = "0") -> OrderFacts:
    return OrderFacts(
        channel=channel,
        store="TPE-101",
        ordered_at=AT,
        lines=tuple(LineFacts(c, Decimal(a)) for c, a in lines),
        order_discount=Decimal(discount),
    )


def earn(rules: PointsRules, o: OrderFacts, tier: str = "1") -> int:
    return points_for_order(rules, o, tier_multiplier=Decimal(tier)).points


def test_default_is_a_point_per_hundred_rounded_down_once() -> None:
    rules = PointsRules()
    assert earn(rules, order(("服飾", "1290"))) == 12
    # two lines of 150 earn 3, not 1 + 1: the order is rounded once
    assert earn(rules, order(("服飾", "150"), ("服飾", "150"))) == 3
    assert earn(rules, order(("服飾", "99.99"))) == 0
    assert earn(rules, order(("服飾", "1000"), discount="101")) == 8


def test_marketplaces_earn_nothing_unless_the_merchant_says_so() -> None:
    assert earn(PointsRules(), order(("服飾", "1000"), channel="shopee")) == 0
    rules = PointsRules(channel_multipliers={"shopee": Decimal("0.5")})
    assert earn(rules, order(("服飾", "1000"), channel="shopee")) == 5


def test_multipliers_compound_and_are_explained() -> None:
    rules = PointsRules(
        category_multipliers={"美妝保養": Decimal(2)},
        store_multipliers={"TPE-101": Decimal("1.5")},
        promotions=[
            Promotion(name="Double 11", starts_on=date(2026, 3, 10), ends_on=date(2026, 3, 10),
                      multiplier=Decimal(2), categories=["美妝保養"]),
        ],
    )  # fmt: skip
    result = points_for_order(
        rules, order(("美妝保養", "1000"), ("服飾", "1000")), tier_multiplier=Decimal("1.2")
    )
    # beauty: 10 × 1.5 × 1.2 × 2 × 2 = 72; clothes: 10 × 1.5 × 1.2 = 18
    assert result.points == 90
    assert set(result.explanation) == {
        "store TPE-101 ×1.5", "tier ×1.2", "Double 11 ×2", "category 美妝保養 ×2",
    }  # fmt: skip


def test_a_spend_bonus_is_given_once_an_order_reaches_it() -> None:
    """單筆滿3000送300點 on 2026-03-10: 3,000 of goods earn 30 and 300 besides, not multiplied by
    the level (×2: 60 + 300); 2,999.99 earn 29 alone; on 美妝保養 only, the 服飾 beside it do
    not count toward it; after the order's discount the lines must still reach it; a
    marketplace that earns nothing earns no bonus; a day outside the dates, none."""
    bonus = Promotion(name="滿3000送300", starts_on=date(2026, 3, 10), ends_on=date(2026, 3, 10),
                      bonus_points=300, min_spend=Decimal(3000))  # fmt: skip
    rules = PointsRules(promotions=[bonus], channel_multipliers={"shopee": Decimal(0)})
    got = points_for_order(rules, order(("服飾", "3000")), tier_multiplier=Decimal(2))
    assert (got.points, got.explanation) == (360, ("tier ×2", "滿3000送300 +300"))
    assert earn(rules, order(("服飾", "2999.99"))) == 29
    assert earn(rules, order(("服飾", "3100"), discount="101")) == 29  # 2,999 paid
    assert earn(rules, order(("服飾", "3000"), channel="shopee")) == 0
    beauty = bonus.model_copy(update={"categories": ["美妝保養"]})
    only = PointsRules(promotions=[beauty])
    assert earn(only, order(("美妝保養", "2000"), ("服飾", "2000"))) == 40
    assert earn(only, order(("美妝保養", "3000"), ("服飾", "100"))) == 331
    later = bonus.model_copy(update={"starts_on": date(2026, 3, 11), "ends_on": date(2026, 3, 11)})
    assert earn(PointsRules(promotions=[later]), order(("服飾", "3000"))) == 30


@given(
    st.lists(st.tuples(st.sampled_from(["服飾", "美妝保養", None]),
                       st.decimals(min_value=0, max_value=5000, places=2)),
             min_size=1, max_size=5),
    st.sampled_from(["pos", "web", "shopee"]),
    st.sampled_from([None, "TPE-101", "OUTLET"]),
)  # fmt: skip
def test_the_spend_bonus_a_return_weighs_is_the_one_a_sale_gives(
    lines: list[tuple[str | None, Decimal]], channel: str, store: str | None
) -> None:
    """What spend_bonus says lines reach is what points_for_order gives besides the multiplied
    points, for every basket, channel and store (a marketplace and an outlet earn none), with
    two promotions, one on 美妝保養 alone, one on weekdays the day is not."""
    day = date(2026, 3, 10)
    promos = [
        Promotion(name="滿3000送300", starts_on=day, ends_on=day, bonus_points=300,
                  min_spend=Decimal(3000), multiplier=Decimal(2)),
        Promotion(name="美妝滿1000送80", starts_on=day, ends_on=day, bonus_points=80,
                  min_spend=Decimal(1000), categories=["美妝保養"]),
        Promotion(name="週末滿500送20", starts_on=day, ends_on=day, bonus_points=20,
                  min_spend=Decimal(500), weekdays=[6, 7]),
    ]  # fmt: skip
    rules = PointsRules(promotions=promos, channel_multipliers={"shopee": Decimal(0)},
                        store_multipliers={"OUTLET": Decimal(0)})  # fmt: skip
    none = rules.model_copy(update={"promotions": [
        p.model_copy(update={"bonus_points": 0}) for p in promos]})  # fmt: skip
    facts = OrderFacts(channel, store, AT, tuple(LineFacts(c, a) for c, a in lines), Decimal(0))
    besides = earn(rules, facts) - earn(none, facts)
    assert spend_bonus(rules, channel=channel, store=store, ordered_at=AT,
                       lines=facts.lines) == besides  # fmt: skip


def test_promotions_follow_the_local_day() -> None:
    promo = Promotion(name="D", starts_on=date(2026, 3, 11), ends_on=date(2026, 3, 11),
                      multiplier=Decimal(2))  # fmt: skip
    rules = PointsRules(promotions=[promo])
    late = OrderFacts(
        "web",
        None,
        datetime(2026, 3, 10, 16, 30, tzinfo=UTC),
        (LineFacts(None, Decimal(100)),),
        Decimal(0),
    )
    assert earn(rules, late) == 2  # 00:30 on the 11th in Taipei


def test_a_member_day_comes_back_by_the_local_weekday_or_day_of_the_month() -> None:
    """每週三會員日 ×2 and 每月8日 ×3 through 2026: 16:30 UTC on Tuesday 10 March is Wednesday
    in Taipei (×2), 15:30 is still Tuesday; Friday 8 May (×3), and both on Wednesday 8 July
    (×6). A return weighs the lines of that day alike (line_weights). Empty or impossible
    days are refused."""
    from omo.points.rules import line_weights

    def promo(**kw: object) -> Promotion:
        return Promotion.model_validate({"name": "會員日", "starts_on": "2026-01-01",
                                         "ends_on": "2026-12-31", **kw})  # fmt: skip

    rules = PointsRules(promotions=[promo(multiplier=2, weekdays=[3]),
                                    promo(multiplier=3, days_of_month=[8])])  # fmt: skip

    def on(at: datetime) -> int:
        return earn(rules, OrderFacts("pos", None, at, (LineFacts(None, Decimal(100)),),
                                      Decimal(0)))  # fmt: skip

    assert on(datetime(2026, 3, 10, 16, 30, tzinfo=UTC)) == 2
    assert on(datetime(2026, 3, 10, 15, 30, tzinfo=UTC)) == 1
    assert on(datetime(2026, 5, 8, 3, 0, tzinfo=UTC)) == 3
    assert on(datetime(2026, 7, 8, 3, 0, tzinfo=UTC)) == 6
    assert on(datetime(2027, 7, 7, 3, 0, tzinfo=UTC)) == 1  # a Wednesday after ends_on
    weights = line_weights(rules, channel="pos", ordered_at=datetime(2026, 7, 8, 3, 0, tzinfo=UTC),
                           lines=[LineFacts(None, Decimal(100))])  # fmt: skip
    assert weights == [Decimal(600)]
    for bad in ({"weekdays": []}, {"weekdays": [8]}, {"days_of_month": [0]}):
        with pytest.raises(ValidationError):
            promo(multiplier=2, **bad)


def test_the_birthday_month_multiplies_by_the_programmes_month() -> None:
    """×2 in the member's birthday month, as Taipei sees the sale (16:30 UTC on the last of
    February is 1 March there); nothing without a birth date or with the multiplier at 1."""
    rules = PointsRules(birthday_multiplier=Decimal(2))
    march = date(1990, 3, 25)
    result = points_for_order(rules, order(("服飾", "1000")), tier_multiplier=Decimal("1.5"),
                              birthday=march)  # fmt: skip
    assert (result.points, set(result.explanation)) == (
        30, {"tier ×1.5", "birthday month ×2"})  # fmt: skip
    at_midnight = OrderFacts("web", None, datetime(2026, 2, 28, 16, 30, tzinfo=UTC),
                             (LineFacts(None, Decimal(1000)),), Decimal(0))  # fmt: skip
    assert (
        points_for_order(rules, at_midnight, tier_multiplier=Decimal(1), birthday=march).points
        == 20
    )
    before = OrderFacts("web", None, datetime(2026, 2, 28, 15, 30, tzinfo=UTC),
                        (LineFacts(None, Decimal(1000)),), Decimal(0))  # fmt: skip
    assert points_for_order(rules, before, tier_multiplier=Decimal(1), birthday=march).points == 10
    assert points_for_order(rules, order(("服飾", "1000")), tier_multiplier=Decimal(1),
                            birthday=date(1990, 4, 1)).points == 10  # fmt: skip
    assert points_for_order(rules, order(("服飾", "1000")), tier_multiplier=Decimal(1)).points == 10
    assert points_for_order(PointsRules(), order(("服飾", "1000")), tier_multiplier=Decimal(1),
                            birthday=march).points == 10  # fmt: skip
    with pytest.raises(ValidationError, match="birthday_multiplier"):
        PointsRules(birthday_multiplier=Decimal(21))


def test_rounding_modes() -> None:
    o = order((None, "150"))
    assert earn(PointsRules(rounding="floor"), o) == 1
    assert earn(PointsRules(rounding="half_up"), o) == 2
    assert earn(PointsRules(rounding="ceiling"), order((None, "101"))) == 2


def test_expiry_policies() -> None:
    assert expires_at(PointsRules(), AT) == datetime(2027, 3, 11, 0, 0, tzinfo=TPE)
    end_of_month = datetime(2026, 1, 31, 4, 0, tzinfo=UTC)
    assert expires_at(PointsRules(expiry_months=1), end_of_month) == datetime(
        2026, 3, 1, tzinfo=TPE
    )
    assert expires_at(PointsRules(expiry="year_end", expiry_years=0), AT) == datetime(
        2027, 1, 1, tzinfo=TPE
    )
    assert expires_at(PointsRules(expiry="year_end", expiry_years=1), AT) == datetime(
        2028, 1, 1, tzinfo=TPE
    )
    assert expires_at(PointsRules(expiry="never"), AT) is None
    # 取得後第12個月月底: earned 10 March 2026, spendable through 31 March 2027; earned on
    # 31 January with one month, through 28 February
    assert expires_at(PointsRules(expiry="month_end"), AT) == datetime(2027, 4, 1, tzinfo=TPE)
    assert expires_at(PointsRules(expiry="month_end", expiry_months=1), end_of_month) == (
        datetime(2026, 3, 1, tzinfo=TPE)
    )
    december = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
    assert expires_at(PointsRules(expiry="month_end", expiry_months=1), december) == datetime(
        2027, 2, 1, tzinfo=TPE
    )
    assert available_at(PointsRules(return_window_days=7), AT) == datetime(
        2026, 3, 17, 4, 0, tzinfo=UTC
    )


def test_redemption_value_and_cap() -> None:
    rules = PointsRules(point_value=Decimal("0.5"), max_redeem_share=Decimal("0.3"))
    assert redeem_value(rules, 101) == Decimal("50.50")
    assert max_redeemable(rules, order_amount=Decimal("1000"), balance=10_000) == 600
    assert max_redeemable(rules, order_amount=Decimal("1000"), balance=42) == 42
    steps = rules.model_copy(update={"redeem_step": 25})
    assert max_redeemable(steps, order_amount=Decimal("1000"), balance=10_000) == 600
    assert max_redeemable(steps, order_amount=Decimal("990"), balance=10_000) == 575  # not 594
    assert max_redeemable(steps, order_amount=Decimal("1000"), balance=42) == 25
    assert max_redeemable(steps, order_amount=Decimal("1000"), balance=24) == 0


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValidationError, match="between 0 and 20"):
        PointsRules(category_multipliers={"x": Decimal(50)})
    with pytest.raises(ValidationError, match="timezone"):
        PointsRules(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="before starts_on"):
        Promotion(
            name="x", starts_on=date(2026, 2, 1), ends_on=date(2026, 1, 1), multiplier=Decimal(2)
        )
    with pytest.raises(ValidationError):
        PointsRules(spend_per_point=Decimal(0))


amounts = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False)


@given(st.lists(amounts, min_size=1, max_size=10), st.integers(0, 100))
def test_splitting_lines_never_changes_the_points(parts: list[Decimal], cut: int) -> None:
    rules = PointsRules()
    whole = earn(rules, order((None, str(sum(parts)))))
    split = earn(rules, order(*((None, str(p)) for p in parts)))
    assert whole == split
    assert whole == int(sum(parts) // 100)


def test_points_go_in_steps_worth_a_whole_number_of_the_price_unit() -> None:
    """At a till of whole dollars, points of NT$0.5 go two at a time, of NT$0.1 or 0.3 ten at a
    time; the programme's own step, if larger, is raised to a common multiple; in cents, or at
    NT$1 a point, nothing changes."""
    from omo.points.rules import step_in

    def step(value: str, unit: str, own: int = 1) -> int:
        rules = PointsRules(point_value=Decimal(value), redeem_step=own)
        return step_in(rules, Decimal(unit)).redeem_step

    assert [step("0.5", "1"), step("0.1", "1"), step("0.3", "1"), step("1", "1")] == [2, 10, 10, 1]
    assert [step("0.5", "1", 4), step("0.1", "1", 25), step("2", "10"), step("0.5", "0.01")] == [
        4, 50, 5, 1]  # fmt: skip
    same = PointsRules()
    assert step_in(same, Decimal(1)) is same
