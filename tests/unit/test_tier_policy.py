"""Tier policy (pure), exhaustively: every level a member can hold × every level their figures
reach × every moment relative to review and grace."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from omo.tiers.policy import (
    DEFAULT_PROGRAMME,
    Level,
    Outlook,
    Standing,
    TierProgramme,
    decide,
    outlook,
    progress,
    qualified_level,
    returned,
    returned_why,
    review_date,
)

P = DEFAULT_PROGRAMME  # member < silver 10k < gold 30k < diamond 80k; grace 30 days
SINCE = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
REVIEW = review_date(P, SINCE)
SPEND_FOR = [Decimal(0), Decimal(10_000), Decimal(30_000), Decimal(80_000)]
MOMENTS = {
    "before review": REVIEW - timedelta(days=1),
    "at review": REVIEW,
    "in grace": REVIEW + timedelta(days=29),
    "after grace": REVIEW + timedelta(days=30),
}


def standing(spend: Decimal) -> Standing:
    return Standing(spend=spend, points=0, orders=0, top_share=None)


@pytest.mark.parametrize(
    ("have", "reach", "moment"),
    list(itertools.product(range(4), range(4), MOMENTS)),
)
def test_every_case(have: int, reach: int, moment: str) -> None:
    now = MOMENTS[moment]
    d = decide(P, current=P.levels[have].code, since=SINCE, review_at=REVIEW,
               standing=standing(SPEND_FOR[reach]), now=now)  # fmt: skip
    if reach > have:  # up at once, whatever the date; a new review a year on
        assert (d.level, d.changed) == (P.levels[reach].code, True)
        assert d.review_at == review_date(P, now)
        assert d.reason.startswith("upgrade")
    elif reach < have and moment == "after grace":  # down only past review + grace, to reach
        assert (d.level, d.changed) == (P.levels[reach].code, True)
        assert d.reason.startswith("downgrade")
    else:
        assert (d.level, d.changed) == (P.levels[have].code, False)
        if reach == have and moment != "before review":
            assert d.review_at == review_date(P, now)  # renewed
        elif reach < have:
            assert d.review_at == REVIEW  # kept until review + grace


@pytest.mark.parametrize(
    ("have", "reach", "moment", "steps"),
    list(itertools.product(range(4), range(4), MOMENTS, (1, 2))),
)
def test_a_review_lowers_a_level_by_at_most_its_steps(
    have: int, reach: int, moment: str, steps: int
) -> None:
    """降一級: past review and grace a member falls to what they keep, but by at most `steps`
    levels, with a new review a year on; up at once as before."""
    p = P.model_copy(update={"downgrade_steps": steps})
    now = MOMENTS[moment]
    d = decide(p, current=p.levels[have].code, since=SINCE, review_at=REVIEW,
               standing=standing(SPEND_FOR[reach]), now=now)  # fmt: skip
    if reach > have:
        assert (d.level, d.changed) == (p.levels[reach].code, True)
    elif reach < have and moment == "after grace":
        assert (d.level, d.changed) == (p.levels[max(reach, have - steps)].code, True)
        assert d.review_at == review_date(p, now) and d.reason.startswith("downgrade")
    else:
        assert (d.level, d.changed) == (p.levels[have].code, False)


KEEPING = DEFAULT_PROGRAMME.model_copy(update={"levels": [
    lv.model_copy(update={"keep_threshold": keep}) for lv, keep in zip(
        DEFAULT_PROGRAMME.levels, (None, Decimal(6_000), Decimal(20_000), Decimal(60_000)),
        strict=True)]})  # fmt: skip
KEEP_FOR = [None, Decimal(6_000), Decimal(20_000), Decimal(60_000)]


@pytest.mark.parametrize(
    ("have", "spend", "moment"),
    list(itertools.product(range(4), (0, 5_999, 6_000, 9_999, 10_000, 19_999, 20_000, 29_999,
                                      30_000, 59_999, 60_000, 79_999, 80_000), MOMENTS)),
)  # fmt: skip
def test_a_keep_threshold_holds_a_level_at_review(have: int, spend: int, moment: str) -> None:
    """Silver kept by 6,000, gold by 20,000, diamond by 60,000 (reached at 10k, 30k, 80k): past
    review and grace a member falls to the highest level up to theirs that they keep; moving up
    still takes the threshold."""
    now = MOMENTS[moment]
    s = standing(Decimal(spend))
    d = decide(KEEPING, current=KEEPING.levels[have].code, since=SINCE, review_at=REVIEW,
               standing=s, now=now)  # fmt: skip
    reach = qualified_level(KEEPING, s)
    kept = max([n for n in range(1, have + 1) if Decimal(spend) >= KEEP_FOR[n]] or [0])  # type: ignore[operator]
    if reach > have:
        assert (d.level, d.changed) == (KEEPING.levels[reach].code, True)
    elif kept < have and moment == "after grace":
        assert (d.level, d.changed) == (KEEPING.levels[kept].code, True)
        assert f"misses {KEEPING.levels[have].name} (spend ≥ {KEEP_FOR[have]})" in d.reason
    else:
        assert (d.level, d.changed) == (KEEPING.levels[have].code, False)


def test_a_keep_threshold_asks_less_than_the_threshold() -> None:
    with pytest.raises(ValidationError, match="keep_threshold"):
        Level(code="g", name="G", threshold=Decimal(100), keep_threshold=Decimal(101))
    with pytest.raises(ValidationError, match="keep_threshold"):
        Level(code="v", name="V", metric="percentile", threshold=Decimal("0.05"),
              keep_threshold=Decimal("0.04"))  # fmt: skip
    kept = Level(code="v", name="V", metric="percentile", threshold=Decimal("0.05"),
                 keep_threshold=Decimal("0.08"))  # fmt: skip
    p = TierProgramme(levels=[Level(code="b", name="B"), kept])
    later = REVIEW + timedelta(days=31)
    top = Standing(Decimal(0), 0, 0, Decimal("0.07"))
    assert (
        decide(p, current="v", since=SINCE, review_at=REVIEW, standing=top, now=later).level == "v"
    )
    out = Standing(Decimal(0), 0, 0, Decimal("0.09"))
    assert (
        decide(p, current="v", since=SINCE, review_at=REVIEW, standing=out, now=later).level == "b"
    )


def test_thresholds_are_inclusive_and_checked_top_down() -> None:
    assert qualified_level(P, standing(Decimal("9999.99"))) == 0
    assert qualified_level(P, standing(Decimal(10_000))) == 1
    assert qualified_level(P, standing(Decimal(10**9))) == 3


def test_other_metrics_and_percentiles() -> None:
    p = TierProgramme(levels=[
        Level(code="base", name="一般"),
        Level(code="regular", name="常客", metric="orders", threshold=Decimal(3)),
        Level(code="vip", name="VIP", metric="percentile", threshold=Decimal("0.05")),
    ])  # fmt: skip
    assert qualified_level(p, Standing(Decimal(0), 0, 3, None)) == 1
    assert qualified_level(p, Standing(Decimal(0), 0, 0, Decimal("0.05"))) == 2
    assert qualified_level(p, Standing(Decimal(0), 0, 9, Decimal("0.051"))) == 1
    assert qualified_level(p, Standing(Decimal(0), 0, 9, None)) == 1  # no rank computed yet
    points = TierProgramme(levels=[Level(code="a", name="A"),
                                   Level(code="b", name="B", metric="points", threshold=Decimal(500))])  # fmt: skip
    assert qualified_level(points, Standing(Decimal(0), 500, 0, None)) == 1


def test_one_order_of_an_amount_reaches_a_level() -> None:
    """單筆滿30,000直升金卡: the largest order counts, not the sum; what is missing is a whole
    order of 30,000, and the reason names the largest order."""
    p = TierProgramme(levels=[
        Level(code="m", name="會員"),
        Level(code="g", name="金卡", metric="single_order", threshold=Decimal(30_000),
              keep_threshold=Decimal(10_000)),
    ])  # fmt: skip
    many = Standing(Decimal(90_000), 0, 5, None, largest=Decimal(29_999))
    one = Standing(Decimal(30_000), 0, 1, None, largest=Decimal(30_000))
    assert (qualified_level(p, many), qualified_level(p, one)) == (0, 1)
    assert progress(p, "m", many) == (p.levels[1], Decimal(30_000))
    up = decide(p, current="m", since=SINCE, review_at=None, standing=one, now=SINCE)
    assert up.level == "g" and "largest order 30000 meets 金卡 (single_order ≥ 30000)" in up.reason
    later = REVIEW + timedelta(days=31)
    small = Standing(Decimal(40_000), 0, 9, None, largest=Decimal(9_999))
    assert (
        decide(p, current="g", since=SINCE, review_at=REVIEW, standing=small, now=later).level
        == "m"
    )
    kept = Standing(Decimal(10_000), 0, 1, None, largest=Decimal(10_000))
    assert (
        decide(p, current="g", since=SINCE, review_at=REVIEW, standing=kept, now=later).level == "g"
    )


def test_review_dates() -> None:
    tpe = ZoneInfo("Asia/Taipei")
    # 2026-12-31 20:00 UTC is already 2027-01-01 in Taipei
    late = datetime(2026, 12, 31, 20, 0, tzinfo=UTC)
    assert review_date(P, late) == datetime(2028, 1, 1, tzinfo=tpe)
    leap = datetime(2028, 2, 29, 4, 0, tzinfo=UTC)
    assert review_date(P, leap) == datetime(2029, 3, 1, tzinfo=tpe)
    year_end = P.model_copy(update={"review": "year_end"})
    assert review_date(year_end, SINCE) == datetime(2027, 1, 1, tzinfo=tpe)


def test_progress_to_the_next_level() -> None:
    nxt, missing = progress(P, "silver", standing(Decimal(12_500)))
    assert nxt is not None and nxt.code == "gold"
    assert missing == Decimal(17_500)
    assert progress(P, "diamond", standing(Decimal(0))) == (None, None)


@given(
    st.sampled_from(["member", "silver", "gold", "diamond"]),
    st.integers(0, 100_000), st.integers(0, 100_000), st.integers(0, 5_000),
)  # fmt: skip
def test_the_outlook_of_an_order_is_what_recording_it_decides(
    have: str, spend: int, total: int, earned: int
) -> None:
    """An order's outlook names a level exactly when the sale would move the member up to it
    at once; else it says what the next level still misses, and an order that much larger
    reaches it."""
    s = standing(Decimal(spend))
    seen = outlook(P, have, s, total=Decimal(total), points=earned)
    after = standing(Decimal(spend + total))
    up = decide(P, current=have, since=SINCE, review_at=REVIEW, standing=after, now=SINCE)
    assert (seen.reached.code if seen.reached else None) == (up.level if up.changed else None)
    if seen.reached is None and seen.next is not None:
        assert seen.short is not None and seen.short > 0
        more = outlook(P, have, s, total=Decimal(total) + seen.short, points=earned)
        assert more.reached is not None and P.rank(more.reached.code) >= P.rank(seen.next.code)
    if seen.reached is None and have == "diamond":
        assert (seen.next, seen.short) == (None, None)


def test_the_outlook_by_orders_points_and_one_order() -> None:
    """Other metrics: the order counts as one order, its points and its total as the largest."""
    p = TierProgramme(levels=[
        Level(code="m", name="會員"),
        Level(code="o", name="常客", metric="orders", threshold=Decimal(5)),
        Level(code="p", name="點數卡", metric="points", threshold=Decimal(1_000)),
        Level(code="g", name="金卡", metric="single_order", threshold=Decimal(30_000)),
    ])  # fmt: skip
    four = Standing(Decimal(0), 0, 4, None)
    assert outlook(p, "m", four, total=Decimal(10), points=0).reached == p.levels[1]
    three = Standing(Decimal(0), 0, 3, None)
    assert outlook(p, "m", three, total=Decimal(10), points=0) == Outlook(None, p.levels[1], 1)
    rich = Standing(Decimal(0), 900, 9, None)
    assert outlook(p, "o", rich, total=Decimal(10), points=50) == Outlook(None, p.levels[2], 50)
    assert outlook(p, "p", rich, total=Decimal(30_000), points=0).reached == p.levels[3]
    assert outlook(p, "p", rich, total=Decimal(29_999), points=0).short == 30_000


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ([{"code": "a", "name": "A", "threshold": 5}], "threshold 0"),
        ([{"code": "a", "name": "A"}, {"code": "a", "name": "B", "threshold": 1}], "unique"),
        ([{"code": "a", "name": "A"}, {"code": "b", "name": "B", "threshold": 10},
          {"code": "c", "name": "C", "threshold": 5}], "harder"),
        ([{"code": "a", "name": "A"}, {"code": "b", "name": "B", "metric": "percentile",
                                        "threshold": 5}], "share"),
        ([{"code": "A B", "name": "A"}], "code"),
        ([], "levels"),
    ],
)  # fmt: skip
def test_bad_programmes_are_refused(levels: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TierProgramme.model_validate({"levels": levels})


@pytest.mark.parametrize(
    ("have", "before", "was", "now"),
    [c for c in itertools.product(range(4), repeat=4) if c[1] <= c[0]],
)
def test_a_return_takes_back_the_upgrade_it_undoes(
    have: int, before: int, was: int, now: int
) -> None:
    """Held `have`, reached from `before` by upgrades since the returned order; the figures
    reached `was` with the goods and `now` without them."""
    got = returned(P, current=P.levels[have].code, before=P.levels[before].code,
                   was=standing(SPEND_FOR[was]), standing=standing(SPEND_FOR[now]))  # fmt: skip
    if was >= have > now:  # the return took away what the level rests on
        back = max(now, before)  # as high as the figures still reach, never below before
        assert got == (P.levels[back].code if back < have else None)
    else:  # kept until review already, or still qualified: the review decides, as ever
        assert got is None


def test_a_level_by_rank_is_left_to_the_review() -> None:
    ranked = TierProgramme(levels=[
        Level(code="member", name="會員"),
        Level(code="vip", name="VIP", metric="percentile", threshold=Decimal("0.05")),
    ])  # fmt: skip
    top = Standing(spend=Decimal(99_000), points=0, orders=0, top_share=Decimal("0.01"))
    assert returned(ranked, current="vip", before="member", was=top,
                    standing=standing(Decimal(0))) is None  # fmt: skip
    assert returned_why(P.levels[2], standing(Decimal(500))) == (
        "upgrade returned: spend 500 misses 金卡 (spend ≥ 30000)"
    )
