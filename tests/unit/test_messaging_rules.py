"""Quiet hours, back-off, template rendering and the uplift interval (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omo.journeys.report import uplift
from omo.messaging import policy, templates

TPE = ZoneInfo("Asia/Taipei")


def local(h: int, m: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, h, m, tzinfo=TPE)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local(10), local(10)),  # daytime: now
        (local(20, 59), local(20, 59)),
        (local(21), local(9, day=3)),  # evening: next morning
        (local(23, 30), local(9, day=3)),
        (local(0, 5), local(9)),  # after midnight: this morning
        (local(8, 59), local(9)),
        (local(9), local(9)),
    ],
)
def test_quiet_hours_wrap_midnight(at: datetime, expected: datetime) -> None:
    got = policy.after_quiet_hours(at.astimezone(UTC), zone=TPE, start=21, end=9)
    assert got == expected.astimezone(UTC)


def test_quiet_hours_within_a_day_and_none() -> None:
    assert policy.after_quiet_hours(local(13), zone=TPE, start=12, end=14) == local(14)
    assert policy.after_quiet_hours(local(3), zone=TPE, start=0, end=0) == local(3)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)), st.integers(0, 23), st.integers(0, 23))  # fmt: skip
def test_quiet_hours_never_land_inside_them(at: datetime, start: int, end: int) -> None:
    got = policy.after_quiet_hours(at, zone=TPE, start=start, end=end)
    assert got >= at and got - at <= timedelta(hours=24)
    if start != end:
        hour = got.astimezone(TPE).hour
        inside = (start <= hour < end) if start < end else (hour >= start or hour < end)
        assert not inside


def test_backoff_doubles_to_a_ceiling() -> None:
    assert [policy.backoff(n).total_seconds() / 60 for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert policy.backoff(30) == timedelta(hours=6)


def test_locales_fall_back_to_traditional_chinese() -> None:
    assert [templates.locale_for(x) for x in (None, "zh-TW", "zh-CN", "en", "en-GB", "ja")] == [
        "zh-TW", "zh-TW", "zh-TW", "en", "en", "zh-TW",
    ]  # fmt: skip


def test_render_tracks_links_in_order_and_personalises() -> None:
    values = {"brand": "好品", "shop_url": "https://shop.tw", "name": "陳美玲",
              "unsubscribe_url": "U", "coupon_qr_url": "", "recommended": [
                  {"sku": "A1", "name": "保溫杯"}, {"sku": "B2", "name": "杯套"}]}  # fmt: skip
    out = templates.render("related_products", "zh-TW", values, link_base="https://x/t/tok")
    assert out.subject == "陳美玲，買了它的人也喜歡這些"
    assert out.links == ["https://shop.tw/p/A1", "https://shop.tw/p/B2"]
    assert "- 保溫杯：https://x/t/tok/c/0" in out.body and "- 杯套：https://x/t/tok/c/1" in out.body


def test_every_shipped_template_has_both_locales_and_renders() -> None:
    names = templates.names()
    assert len(names) >= 8
    values = {"brand": "B", "shop_url": "https://s", "name": "N", "unsubscribe_url": "U",
              "coupon_qr_url": "Q", "coupon_code": "C0DE", "coupon_until": "2026-12-31",
              "tier": "金卡", "points": 120, "expiring_points": 20, "expiring_on": "2026-12-31",
              "recommended": [], "cart": [], "next_tier": "鑽石", "to_next": "NT$1,000", "card_url": "C"}  # fmt: skip
    for name in names:
        for locale in templates.LOCALES:
            out = templates.render(name, locale, values, link_base="L")
            assert out.subject and out.body and "U" in out.body, (name, locale)


def test_missing_name_fails_the_render_not_the_member() -> None:
    with pytest.raises(Exception, match="undefined"):
        templates.render("welcome", "en", {}, link_base="L")


def test_uplift_interval() -> None:
    got = uplift(60, 100, 40, 100)
    assert got is not None
    assert got.rate == pytest.approx(0.2)
    # sqrt(.6*.4/100 + .4*.6/100) = 0.069282; ×1.959964
    assert (got.low, got.high) == (pytest.approx(0.2 - 0.135790, abs=1e-5),
                                   pytest.approx(0.2 + 0.135790, abs=1e-5))  # fmt: skip
    assert got.significant
    same = uplift(10, 100, 10, 100)
    assert same is not None and not same.significant and same.rate == 0
    assert uplift(1, 10, 0, 0) is None
