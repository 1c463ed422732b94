"""The price of a basket (checkout/pricing.py): coupons one after another, each off its own
lines, as the real coupon rules price them on the basket `basket_after` shows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from omo.checkout import pricing
from omo.coupons import rules as coupon_rules
from omo.coupons.rules import BasketLine, CouponState, CouponTemplate

NOW = datetime(2026, 12, 1, tzinfo=UTC)
STATE = CouponState(member_id=None, valid_from=None, valid_until=None, uses=0, max_uses=1,
                    status="active")  # fmt: skip
CATS = ["服飾", "美妝保養", "食品"]
EPS = Decimal("1e-18")


def _apply(p: pricing.Price, code: str, t: CouponTemplate) -> coupon_rules.Priced | None:
    seen = pricing.basket_after(p, "pos", None)
    result = coupon_rules.price(t, STATE, seen, member_id=None, now=NOW, redemptions_left=None)
    pricing.add_coupon(p, code, result)
    return result if isinstance(result, coupon_rules.Priced) else None


def test_a_category_coupon_does_not_lower_what_the_next_one_sees() -> None:
    lines = [BasketLine("A", "服飾", 1, Decimal(800)), BasketLine("B", "美妝保養", 1, Decimal(600))]
    p = pricing.Price(lines=pricing.tier_lines(lines, Decimal(1)))
    _apply(p, "BEA", CouponTemplate(name="b", kind="amount_off", amount=Decimal(100),
                                    categories=["美妝保養"]))  # fmt: skip
    got = _apply(p, "APP", CouponTemplate(name="a", kind="percent_off", percent=Decimal(10),
                                          min_spend=Decimal(800), categories=["服飾"]))  # fmt: skip
    assert got is not None and got.discount == Decimal(80)
    assert pricing.worth(p, with_points=False) == [Decimal(720), Decimal(500)]


def test_the_levels_discount_skips_the_excluded_categories() -> None:
    lines = [BasketLine("A", "服飾", 2, Decimal(500)), BasketLine("G", "禮券", 1, Decimal(1000))]
    priced = pricing.tier_lines(lines, Decimal("0.9"), ["禮券"])
    assert [li.tier_discount for li in priced] == [Decimal(100), Decimal(0)]


def _template(
    kind: str, amount: int, cats: list[str] | None, min_spend: int, ex: list[str]
) -> CouponTemplate:
    size = {"percent": Decimal(amount % 50 + 1)} if kind == "percent_off" else {
        "amount": Decimal(amount)}  # fmt: skip
    excluded = [c for c in ex if c not in (cats or ())] or None
    return CouponTemplate(name="t", kind=kind, categories=cats, min_spend=Decimal(min_spend),
                          excluded_categories=excluded, **size)  # type: ignore[arg-type]  # fmt: skip


TEMPLATES = st.builds(
    _template,
    st.sampled_from(["amount_off", "percent_off"]),
    st.integers(1, 900),
    st.one_of(st.none(), st.lists(st.sampled_from(CATS), min_size=1, max_size=2, unique=True)),
    st.integers(0, 1500),
    st.lists(st.sampled_from(CATS), max_size=1),  # a category it excludes
)
BASKETS = st.lists(
    st.tuples(st.sampled_from(CATS), st.integers(1, 3), st.integers(1, 2000)), min_size=1,
    max_size=5,
)  # fmt: skip


@settings(max_examples=300)
@given(
    BASKETS, st.lists(TEMPLATES, max_size=4), st.sampled_from(["1", "0.95", "0.9"]),
    st.lists(st.sampled_from(CATS), max_size=2, unique=True), st.integers(0, 5000),
)  # fmt: skip
def test_coupons_come_off_their_own_lines_and_the_lines_add_up(
    basket: list[tuple[str, int, int]], templates: list[CouponTemplate], rate: str,
    no_points: list[str], spend: int,
) -> None:  # fmt: skip
    """Whatever coupons apply, in any order: each takes no more than its lines have left; the
    lines outside its categories are what they were before it; the points paid with (up to
    what the lines points pay for have left) leave the other lines as the coupons left them;
    every line is worth 0 or more, and the lines add up to the goods."""
    lines = [BasketLine(f"S{n}", c, q, Decimal(u)) for n, (c, q, u) in enumerate(basket)]
    p = pricing.Price(lines=pricing.tier_lines(lines, Decimal(rate)))
    spread = Decimal(0)  # what coupons took beyond their lines' unrounded worth
    for n, t in enumerate(templates):
        before = pricing.worth(p, with_points=False)
        got = _apply(p, f"C{n}", t)
        after = pricing.worth(p, with_points=False)
        if got is None:
            assert after == before
            continue
        mine = [t.covers(li.category) for li in p.lines]
        left = sum((v for v, m in zip(before, mine, strict=True) if m), Decimal(0))
        assert got.discount <= left + Decimal("0.01") * len(p.lines)  # cents of the basket shown
        if got.discount <= left:  # placed on its lines (else spread, a rounding cent over)
            for b, a, m in zip(before, after, mine, strict=True):
                # a line worth nothing may move by 28-digit noise, and by a share of the cents
                # earlier coupons spread (in proportion to what each line has left)
                assert m or abs(a - b) < EPS + spread
        else:
            spread += got.discount - left
    p.points_excluded = tuple(no_points)
    before = pricing.worth(p, with_points=False)
    room = pricing.points_room(p)
    payable = [li.category not in no_points for li in p.lines]
    assert (
        0 <= room <= sum((v for v, m in zip(before, payable, strict=True) if m), EPS * len(before))
    )
    p.points_value = min(Decimal(spend) / 10, room)
    worth = pricing.worth(p, with_points=True)
    assert all(v >= -EPS for v in worth)
    assert abs(sum(worth, Decimal(0)) - p.goods) < EPS * len(worth)
    for b, a, m in zip(before, worth, payable, strict=True):
        # the same noise and share: the points change what each line has left
        assert m or abs(a - b) < EPS + spread


def test_points_do_not_pay_for_the_categories_the_rules_keep_out() -> None:
    lines = [BasketLine("A", "服飾", 1, Decimal(800)), BasketLine("G", "禮券", 1, Decimal(1000))]
    p = pricing.Price(lines=pricing.tier_lines(lines, Decimal(1)), points_excluded=("禮券",))
    assert pricing.points_room(p) == Decimal(800)
    p.points_value = Decimal(400)
    assert pricing.worth(p, with_points=True) == [Decimal(400), Decimal(1000)]
    p.points_excluded = ()
    assert pricing.points_room(p) == Decimal(1800)


def _said(notes: list[pricing.Note]) -> list[str]:
    return [n.message for n in notes]


def test_the_points_a_basket_takes() -> None:
    """Half of what points pay for, the balance, whole steps; a quote lowers and says so, a
    sale is refused; none beside a coupon when the programme says so."""
    import pytest

    from omo.points.rules import PointsRules
    from omo.shared.errors import ValidationFailed

    def price(**rules: object) -> tuple[pricing.Price, PointsRules]:
        lines = [BasketLine("A", "服飾", 1, Decimal(800)), BasketLine("G", "禮券", 1, Decimal(500))]
        return pricing.Price(lines=pricing.tier_lines(lines, Decimal(1))), PointsRules(**rules)

    p, r = price(redeem_excludes=["禮券"], redeem_step=50)
    notes: list[pricing.Note] = []
    pricing.take_points(p, r, 1000, 430, strict=False, notes=notes)
    assert (p.points_cap, p.points, p.points_value, _said(notes)) == (
        400, 400, Decimal(400), ["points lowered from 430 to the cap 400"])  # fmt: skip
    p, r = price(redeem_step=50)
    notes = []
    pricing.take_points(p, r, 1000, 120, strict=False, notes=notes)
    assert (p.points_cap, p.points, _said(notes)) == (
        650,
        100,
        ["points lowered to a multiple of 50"],
    )
    with pytest.raises(ValidationFailed, match="steps of 50"):
        pricing.take_points(*price(redeem_step=50), 1000, 120, strict=True, notes=[])
    # 滿100點才可折抵 and 單筆最多折抵300點: 60 asked is none (said), 400 is the cap of 300; a
    # basket whose share is under the minimum takes none; a sale of 60 is refused
    for asked, cap, took, said in (
        (60, 300, 0, ["at least 100 points per redemption"]),
        (400, 300, 300, ["points lowered from 400 to the cap 300"]),
    ):
        p, r = price(min_redeem=100, max_redeem_points=300)
        notes = []
        pricing.take_points(p, r, 1000, asked, strict=False, notes=notes)
        assert (p.points_cap, p.points, p.points_value, _said(notes)) == (
            cap,
            took,
            Decimal(took),
            said,
        )
    p, r = price(min_redeem=100)
    pricing.take_points(p, r, 90, 90, strict=False, notes=[])
    assert (p.points_cap, p.points) == (0, 0)  # 90 held: under one redemption
    with pytest.raises(ValidationFailed, match="at least 100 points"):
        pricing.take_points(*price(min_redeem=100), 1000, 60, strict=True, notes=[])
    p, r = price(min_redeem=110, redeem_step=50)
    notes = []
    pricing.take_points(p, r, 1000, 120, strict=False, notes=notes)  # lowered to 100: under 110
    assert (p.points, _said(notes)) == (0, ["points lowered to a multiple of 50",
                                     "at least 110 points per redemption"])  # fmt: skip
    p, r = price(redeem_channels=["pos"])  # 點數僅限門市折抵
    notes = []
    pricing.take_points(p, r, 1000, 100, strict=False, notes=notes, channel="web")
    assert (p.points_cap, p.points, _said(notes)) == (0, 0, ["points do not pay on web"])
    pricing.take_points(p, r, 1000, 100, strict=False, notes=[], channel="pos")
    assert p.points == 100
    with pytest.raises(ValidationFailed, match="do not pay on web"):
        pricing.take_points(*price(redeem_channels=["pos"]), 1000, 100, strict=True, notes=[],
                            channel="web")  # fmt: skip
    p, r = price(redeem_with_coupons=False)
    pricing.add_coupon(p, "C", coupon_rules.Priced(Decimal(100), Decimal(0), None, Decimal(1300)))
    notes = []
    pricing.take_points(p, r, 1000, 100, strict=False, notes=notes)
    assert (p.points_cap, p.points, _said(notes)) == (0, 0, ["points are not used with a coupon"])
    with pytest.raises(ValidationFailed, match="with a coupon"):
        pricing.take_points(p, r, 1000, 100, strict=True, notes=[])


def _whole(amount: Decimal, unit: Decimal) -> bool:
    return amount % unit == 0


@settings(max_examples=300)
@given(
    BASKETS, st.lists(TEMPLATES, max_size=3), st.sampled_from(["0.95", "0.9", "0.88", "0.85"]),
    st.sampled_from(["1", "10"]), st.sampled_from(["1", "0.5", "0.1", "0.3"]),
    st.integers(0, 5000), st.sampled_from([0, 1, 2]),
)  # fmt: skip
def test_at_a_till_of_whole_dollars_every_discount_is_whole(
    basket: list[tuple[str, int, int]], templates: list[CouponTemplate], rate: str, unit: str,
    point_value: str, wanted: int, free: int,
) -> None:  # fmt: skip
    """Settings.price_unit: with prices and coupon amounts in whole units, the level's discount
    on each line, what each coupon takes (a percent, an amount its lines hold less than, a free item priced after
    the level) and the points paid with are whole numbers of the unit, so the total is too;
    the points a quote takes are lowered to whole steps of it and a sale asking for others is
    refused."""
    import pytest

    from omo.points.rules import PointsRules
    from omo.shared.errors import ValidationFailed

    u = Decimal(unit)
    lines = [BasketLine(f"S{n}", c, q, Decimal(p) * u) for n, (c, q, p) in enumerate(basket)]
    p = pricing.Price(lines=pricing.tier_lines(lines, Decimal(rate), unit=u), unit=u)
    assert all(_whole(li.tier_discount, u) for li in p.lines)
    if free < len(lines):  # the level's price of one unit is rarely whole: the free item is
        templates = [CouponTemplate(name="f", kind="free_item", free_sku=f"S{free}"), *templates]
    for n, t in enumerate(templates):
        if t.amount is not None:  # the merchant's amounts are in whole units, as the prices
            t = t.model_copy(update={"amount": t.amount * u})
        got = _apply(p, f"C{n}", t)
        assert got is None or _whole(got.discount, u)
    assert all(_whole(c.discount, u) for c in p.coupons)
    rules = PointsRules(point_value=Decimal(point_value))
    notes: list[pricing.Note] = []
    pricing.take_points(p, rules, 100_000, wanted, strict=False, notes=notes)
    assert _whole(p.points_value, u) and p.points <= wanted
    assert _whole(p.total, u) and p.total >= 0
    step = pricing.step_in(rules, u).redeem_step
    if wanted % step and wanted <= p.points_cap:
        with pytest.raises(ValidationFailed, match=f"steps of {step}"):
            pricing.take_points(p, rules, 100_000, wanted, strict=True, notes=[])


def test_the_unit_rounds_a_discount_half_up() -> None:
    """NT$790 at 95 %: 39.50 off in cents, 40 at a till of whole dollars; 10 % off 1,005 is
    100.50, or 101 (half up); 10 % off 1,004 is 100 either way."""
    lines = [BasketLine("A", "服飾", 1, Decimal(790))]
    assert pricing.tier_lines(lines, Decimal("0.95"))[0].tier_discount == Decimal("39.50")
    assert pricing.tier_lines(lines, Decimal("0.95"), unit=Decimal(1))[0].tier_discount == 40
    ten = CouponTemplate(name="t", kind="percent_off", percent=Decimal(10))
    for price, cents, whole in (("1005", "100.50", "101"), ("1004", "100.40", "100")):
        for unit, off in ((Decimal("0.01"), cents), (Decimal(1), whole)):
            p = pricing.Price(lines=pricing.tier_lines([BasketLine("A", None, 1, Decimal(price))],
                                                       Decimal(1)), unit=unit)  # fmt: skip
            got = _apply(p, "T", ten)
            assert got is not None and got.discount == Decimal(off)


@settings(max_examples=300)
@given(BASKETS, st.sampled_from(["0.95", "0.9", "0.88", "0.85", "0.77"]),
       st.sampled_from(["0.01", "1", "10"]))  # fmt: skip
def test_a_level_price_per_unit_is_the_same_on_every_unit(
    basket: list[tuple[str, int, int]], rate: str, unit: str
) -> None:
    """TierProgramme.discount_per "unit" (每件會員價): each unit's discount is rounded half up to
    the price unit and the line takes it once a unit, so every unit of a line costs the same
    and a free unit of it is exactly that price; a line of one unit is priced as per line, and
    a line of many differs from the line's rounding by less than half a unit a unit."""
    u = Decimal(unit)
    lines = [BasketLine(f"S{n}", c, q, Decimal(p) * u) for n, (c, q, p) in enumerate(basket)]
    each = pricing.tier_lines(lines, Decimal(rate), unit=u, per_unit=True)
    whole = pricing.tier_lines(lines, Decimal(rate), unit=u)
    for li, one, by_line in zip(lines, each, whole, strict=True):
        off = (li.unit_price * (1 - Decimal(rate)) / u).quantize(Decimal(1), "ROUND_HALF_UP") * u
        assert one.tier_discount == off * li.quantity
        assert abs(one.tier_discount - by_line.tier_discount) <= (li.quantity + 1) * u / 2
        if li.quantity == 1:
            assert one.tier_discount == by_line.tier_discount
    first = lines[0]
    p = pricing.Price(lines=each, unit=u)
    got = _apply(p, "F", CouponTemplate(name="f", kind="free_item", free_sku=first.sku))
    assert got is not None
    assert got.discount == first.unit_price - each[0].tier_discount / first.quantity


def test_three_at_nt790_per_unit_cost_750_each() -> None:
    """Silver's 95 % of three NT$790 at a till of whole dollars: 119 off the line (2,251), or
    40 off each unit (750 each, 2,250) when the level's price is rounded per unit."""
    lines = [BasketLine("A", "服飾", 3, Decimal(790))]
    rate, one = Decimal("0.95"), Decimal(1)
    assert pricing.tier_lines(lines, rate, unit=one)[0].tier_discount == 119
    assert pricing.tier_lines(lines, rate, unit=one, per_unit=True)[0].tier_discount == 120
