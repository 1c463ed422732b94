"""What each line of an order was paid (checkout/paid.py): a return gives back what its units
were paid, so a free item comes back for nothing and a coupon on some categories comes off
those lines alone."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from omo.checkout.paid import CouponUse, Line, paid

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


def test_without_coupons_the_discount_is_spread_as_before() -> None:
    lines = [Line(1, "A", None, Decimal(760)), Line(2, "B", None, Decimal(570))]
    got = paid(lines, discount_total=Decimal(100), coupons=[])
    assert abs(got[1] - Decimal(760) * (1 - Decimal(100) / 1330)) < EPS


def test_a_coupon_the_order_cannot_hold_is_spread() -> None:
    """An old order whose free item was priced at its list price (more than its line)."""
    lines = [Line(1, "A", None, Decimal(1494)), Line(2, "MUG", None, Decimal(693))]
    got = paid(lines, discount_total=Decimal(770), coupons=[CouponUse(Decimal(770), "MUG", None)])
    assert abs(sum(got.values()) - Decimal(1417)) < EPS and min(got.values()) > 0


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
