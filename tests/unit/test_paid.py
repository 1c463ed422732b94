"""What each line of an order was paid (checkout/paid.py): a return gives back what its units
were paid, so a free item comes back for nothing and a coupon on some categories comes off
those lines alone; and what the units kept cost when a coupon whose threshold they miss is
clawed back (`due`)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from omo.checkout.paid import CouponUse, Line, due, paid

CATS = ["服飾", "美妝保養", None]
EPS = Decimal("1e-18")


def test_a_free_item_was_paid_nothing() -> None:
    lines = [Line(1, "APP-1", "服飾", Decimal(1494)), Line(2, "MUG", None, Decimal(693))]
    got = paid(lines, discount_total=Decimal(693),
               coupons=[CouponUse(Decimal(693), "MUG", None)])  # fmt: skip
    assert got == {1: Decimal(1494), 2: Decimal(0)}


def test_a_category_coupon_comes_off_its_lines_and_points_off_all() -> None:
    lines = [Line(1, "A", "服飾", Decimal(600)), Line(2, "B", "美妝保養", Decimal(400))]
    # 100 off 美妝保養, then 90 points (the rest of the discount) over what is left: 600 and 300
    got = paid(lines, discount_total=Decimal(190),
               coupons=[CouponUse(Decimal(100), None, ["美妝保養"])])  # fmt: skip
    assert got == {1: Decimal(540), 2: Decimal(270)}


def test_a_coupon_comes_off_none_of_the_categories_it_excludes() -> None:
    lines = [Line(1, "A", "服飾", Decimal(600)), Line(2, "G", "禮券", Decimal(1000))]
    got = paid(lines, discount_total=Decimal(60),
               coupons=[CouponUse(Decimal(60), None, None, excluded=("禮券",))])  # fmt: skip
    assert got == {1: Decimal(540), 2: Decimal(1000)}


def test_without_coupons_the_discount_is_spread_as_before() -> None:
    lines = [Line(1, "A", None, Decimal(760)), Line(2, "B", None, Decimal(570))]
    got = paid(lines, discount_total=Decimal(100), coupons=[])
    assert abs(got[1] - Decimal(760) * (1 - Decimal(100) / 1330)) < EPS


def test_a_coupon_its_lines_cannot_hold_takes_them_and_spreads_the_rest() -> None:
    """An old order whose free item was priced at its list price (more than its line): the
    item was free, so it is worth nothing; the 77 over it comes off the other lines."""
    lines = [Line(1, "A", None, Decimal(1494)), Line(2, "MUG", None, Decimal(693))]
    got = paid(lines, discount_total=Decimal(770), coupons=[CouponUse(Decimal(770), "MUG", None)])
    assert got == {1: Decimal(1417), 2: Decimal(0)}
    # a coupon whose lines are not in the order is spread over them all
    got = paid(lines, discount_total=Decimal(100), coupons=[CouponUse(Decimal(100), "X", None)])
    assert abs(got[2] - Decimal(693) * (1 - Decimal(100) / 2187)) < EPS


ORDERS = st.lists(
    st.tuples(st.sampled_from(["A", "B", "MUG"]), st.sampled_from(CATS), st.integers(0, 5000)),
    min_size=1, max_size=6,
).flatmap(
    lambda raw: st.tuples(
        st.just([Line(n + 1, sku, cat, Decimal(v)) for n, (sku, cat, v) in enumerate(raw)]),
        st.lists(
            st.tuples(st.integers(0, 3000), st.sampled_from([None, "MUG"]),
                      st.sampled_from([None, ["服飾"], ["美妝保養", "服飾"]])),
            max_size=3,
        ),
        st.integers(0, 100),
    )
)  # fmt: skip


@settings(max_examples=400)
@given(ORDERS)
def test_every_line_is_paid_between_nothing_and_its_price_and_all_add_up(order: tuple) -> None:  # type: ignore[type-arg]
    lines, raw, share = order
    goods = sum((li.line_total for li in lines), Decimal(0))
    discount_total = goods * share / 100
    coupons = [CouponUse(Decimal(d), sku, cats) for d, sku, cats in raw]
    got = paid(lines, discount_total=discount_total, coupons=coupons)
    assert set(got) == {li.line_no for li in lines}
    for li in lines:
        assert -EPS <= got[li.line_no] <= li.line_total + EPS
    assert abs(sum(got.values()) - (goods - discount_total)) < EPS


ONE, NONE = Decimal(1), Decimal(0)
SPEND_1000 = CouponUse(Decimal(100), None, None, Decimal(1000))  # 滿1000減100


def test_what_is_kept_below_the_threshold_pays_without_the_coupon() -> None:
    lines = [Line(1, "A", "服飾", Decimal(760)), Line(2, "B", "美妝保養", Decimal(570))]
    kept_a = due(lines, kept={1: ONE, 2: NONE}, discount_total=Decimal(100), coupons=[SPEND_1000])
    assert (kept_a.amount, kept_a.missed) == (Decimal(760), (0,))
    both = due(lines, kept={1: ONE, 2: ONE}, discount_total=Decimal(100), coupons=[SPEND_1000])
    assert (both.amount, both.missed) == (Decimal(1230), ())
    # two units of A kept of three reach 1000: the coupon stays, in proportion
    three = [Line(1, "A", "服飾", Decimal(2280))]
    two_kept = due(three, kept={1: Decimal(2) / 3}, discount_total=Decimal(100),
                   coupons=[SPEND_1000])  # fmt: skip
    assert two_kept.missed == () and abs(two_kept.amount - Decimal(2180) * 2 / 3) < EPS


def test_what_is_kept_below_a_number_of_items_pays_without_the_coupon() -> None:
    """任選3件9折 on 服飾 (three units, 2,400 less 240) beside a 美妝保養 line it does not count:
    two units of 服飾 kept miss its 3 and pay 800 each; all three kept keep it."""
    any3 = CouponUse(Decimal(240), None, ["服飾"], min_items=3)
    lines = [Line(1, "A", "服飾", Decimal(2400), 3), Line(2, "B", "美妝保養", Decimal(600), 2)]
    two = due(lines, kept={1: Decimal(2) / 3, 2: ONE}, discount_total=Decimal(240), coupons=[any3])
    assert two.missed == (0,) and abs(two.amount - Decimal(2200)) < EPS
    three = due(lines, kept={1: ONE, 2: NONE}, discount_total=Decimal(240), coupons=[any3])
    assert (three.amount, three.missed) == (Decimal(2160), ())


def test_a_repeating_coupon_keeps_the_steps_the_kept_goods_reach() -> None:
    """每滿1000減100 took 200 off three 800s (2,400): two kept (1,600) reach one step, so 100 of
    it is clawed back and they cost 1,500; one kept reaches none and costs 800; all kept
    keep it all."""
    every = CouponUse(Decimal(200), None, None, Decimal(1000), every=Decimal(1000),
                      each=Decimal(100))  # fmt: skip
    lines = [Line(n, f"A{n}", "服飾", Decimal(800)) for n in (1, 2, 3)]
    two = due(lines, kept={1: ONE, 2: ONE, 3: NONE}, discount_total=Decimal(200), coupons=[every])
    assert two.missed == (0,) and abs(two.amount - Decimal(1500)) < EPS
    one = due(lines, kept={1: ONE, 2: NONE, 3: NONE}, discount_total=Decimal(200),
              coupons=[every])  # fmt: skip
    assert one.missed == (0,) and abs(one.amount - Decimal(800)) < EPS
    every_kept = due(lines, kept={1: ONE, 2: ONE, 3: ONE}, discount_total=Decimal(200),
                     coupons=[every])  # fmt: skip
    assert (every_kept.amount, every_kept.missed) == (Decimal(2200), ())
    # 1,999 took one step; the 1,000 kept still reaches it, but keeps only its share of the
    # 100 (50.03), as without a claw-back: a claw-back never charges the customer less
    once = CouponUse(Decimal(100), None, None, Decimal(1000), every=Decimal(1000),
                     each=Decimal(100))  # fmt: skip
    pair = [Line(1, "A", None, Decimal(1000)), Line(2, "B", None, Decimal(999))]
    kept = due(pair, kept={1: ONE, 2: NONE}, discount_total=Decimal(100), coupons=[once])
    assert kept.missed == () and abs(kept.amount - (1000 - Decimal(100) * 1000 / 1999)) < EPS


def test_a_coupon_of_thresholds_keeps_what_the_kept_goods_reach() -> None:
    """滿1000減100, 滿2000減250 took 250 off three 800s (2,400): two kept (1,600) reach 滿1000, so
    they cost 1,500 (their share of the 250 was 166.67); one kept reaches none and costs 800."""
    ladder = CouponUse(Decimal(250), None, None, Decimal(1000),
                       ladder=((Decimal(1000), Decimal(100)), (Decimal(2000), Decimal(250))))  # fmt: skip
    lines = [Line(n, f"A{n}", "服飾", Decimal(800)) for n in (1, 2, 3)]
    two = due(lines, kept={1: ONE, 2: ONE, 3: NONE}, discount_total=Decimal(250), coupons=[ladder])
    assert two.missed == (0,) and abs(two.amount - Decimal(1500)) < EPS
    one = due(lines, kept={1: ONE, 2: NONE, 3: NONE}, discount_total=Decimal(250),
              coupons=[ladder])  # fmt: skip
    assert one.missed == (0,) and abs(one.amount - Decimal(800)) < EPS


def test_the_second_at_a_percent_off_keeps_its_share_for_the_pairs_kept() -> None:
    """第二件6折 took 2 × 320 off four 800s (3,200): three kept hold one pair, so they keep 320
    and cost 2,080 (their share of the 640 was 480); one kept holds none and costs 800."""
    nth = CouponUse(Decimal(640), None, None, min_items=2, per_group=True)
    lines = [Line(1, "A", "服飾", Decimal(3200), 4)]
    three = due(lines, kept={1: Decimal(3) / 4}, discount_total=Decimal(640), coupons=[nth])
    assert three.missed == (0,) and abs(three.amount - Decimal(2080)) < EPS
    one = due(lines, kept={1: Decimal(1) / 4}, discount_total=Decimal(640), coupons=[nth])
    assert one.missed == (0,) and abs(one.amount - Decimal(800)) < EPS


def test_a_coupon_whose_lines_all_came_back_is_not_clawed_back() -> None:
    lines = [Line(1, "A", "服飾", Decimal(760)), Line(2, "B", "美妝保養", Decimal(1200))]
    beauty = CouponUse(Decimal(100), None, ["美妝保養"], Decimal(1000))
    kept = due(lines, kept={1: ONE, 2: NONE}, discount_total=Decimal(100), coupons=[beauty])
    assert (kept.amount, kept.missed) == (Decimal(760), ())


def test_a_free_item_kept_without_the_goods_it_came_with_is_paid_for() -> None:
    """送 MUG over 1000: the mug kept and the 1,494 of clothes returned — the mug costs its 693;
    the mug returned and the clothes kept — nothing to claw back, its discount went with it."""
    lines = [Line(1, "APP-1", "服飾", Decimal(1494)), Line(2, "MUG", None, Decimal(693))]
    gift = CouponUse(Decimal(693), "MUG", None, Decimal(1000))
    mug = due(lines, kept={1: NONE, 2: ONE}, discount_total=Decimal(693), coupons=[gift])
    assert (mug.amount, mug.missed) == (Decimal(693), (0,))
    clothes = due(lines, kept={1: ONE, 2: NONE}, discount_total=Decimal(693), coupons=[gift])
    assert (clothes.amount, clothes.missed) == (Decimal(1494), ())


def test_the_threshold_is_measured_after_the_coupons_used_before() -> None:
    """100 off anything, then 滿1000減100: the second saw its lines after the first's share, so
    1,050 kept (969.23 after that share) misses its 1,000."""
    lines = [Line(1, "A", None, Decimal(1050)), Line(2, "B", None, Decimal(250))]
    first = CouponUse(Decimal(100), None, None)
    got = due(lines, kept={1: ONE, 2: NONE}, discount_total=Decimal(200),
              coupons=[first, SPEND_1000])  # fmt: skip
    # 1,050 less its share of the first 100 (80.77) is 969.23: under 1,000
    assert got.missed == (1,)
    assert abs(got.amount - (Decimal(1050) - Decimal(100) * 1050 / 1300)) < EPS


KEPT = st.lists(st.sampled_from([0, 1, 2, 3]), min_size=6, max_size=6)


@settings(max_examples=400)
@given(ORDERS, KEPT, st.lists(st.integers(0, 6000), min_size=3, max_size=3))
def test_clawing_back_never_charges_less_than_kept_nor_more_than_the_goods(
    order: tuple, thirds: list[int], thresholds: list[int],  # type: ignore[type-arg]
) -> None:  # fmt: skip
    """What the kept units cost with coupons clawed back is at least what they were paid and at
    most their price before any coupon or points; with nothing clawed back it is what they
    were paid."""
    lines, raw, share = order
    goods = sum((li.line_total for li in lines), Decimal(0))
    discount_total = goods * share / 100
    coupons = [CouponUse(Decimal(d), sku, cats, Decimal(t),
                         **({"every": Decimal(t), "each": Decimal(d) / 3} if sku is None and t
                            and n % 2 else {}))  # a repeating one: 每滿t, three steps' worth
               for n, ((d, sku, cats), t) in enumerate(zip(raw, thresholds, strict=False))]  # fmt: skip
    kept = {li.line_no: Decimal(thirds[n]) / 3 for n, li in enumerate(lines)}
    worth = paid(lines, discount_total=discount_total, coupons=coupons)
    proportional = sum((worth[n] * k for n, k in kept.items()), Decimal(0))
    got = due(lines, kept=kept, discount_total=discount_total, coupons=coupons)
    assert proportional - EPS <= got.amount
    assert got.amount <= sum((li.line_total * kept[li.line_no] for li in lines), Decimal(0)) + EPS
    if not got.missed:
        assert abs(got.amount - proportional) < EPS
