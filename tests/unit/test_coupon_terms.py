"""What a coupon asks, said in a page's language (web/coupon_terms.py)."""

from __future__ import annotations

from decimal import Decimal

from omo.coupons.schemas import CouponTerms
from omo.web import coupon_terms
from omo.web.i18n import Formats

NONE: dict[str, object] = {
    "min_spend": None, "min_items": None, "categories": None, "excluded_categories": None,
    "channels": None, "weekdays": None, "hours": None, "timezone": "Asia/Taipei",
    "min_level": None, "first_order_only": False, "with_level_price": True,
}  # fmt: skip


def said(lang: str, **terms: object) -> list[str]:
    return coupon_terms.said(lang, Formats(lang), CouponTerms.model_validate({**NONE, **terms}))


def test_a_coupon_of_thresholds_says_each() -> None:
    """階梯滿額: each threshold with what it takes, not 滿1000 again beside them; a min_spend
    above the first threshold is said too."""
    steps = [(Decimal(1000), Decimal(100)), (Decimal(2000), Decimal(250))]
    assert said("zh-TW", min_spend=Decimal(1000), steps=steps) == [
        "滿 NT$1,000 折 NT$100、滿 NT$2,000 折 NT$250"]  # fmt: skip
    assert said("en", min_spend=Decimal(1000), steps=steps) == [
        "NT$100 off from NT$1,000, NT$250 off from NT$2,000"]  # fmt: skip
    assert said("zh-TW", min_spend=Decimal(1500), steps=steps)[1] == "滿 NT$1,500"


def test_a_repeating_coupon_says_every_step_and_its_cap() -> None:
    assert said("zh-CN", min_spend=Decimal(1000), every=Decimal(1000),
                max_discount=Decimal(300)) == ["每满 NT$1,000", "最高减 NT$300"]  # fmt: skip


def test_stores_are_said_by_name_where_known() -> None:
    got = coupon_terms.said("zh-TW", Formats("zh-TW"), CouponTerms.model_validate(
        {**NONE, "stores": ["TPE-101", "X"]}), {"TPE-101": "台北101店"})  # fmt: skip
    assert got == ["限 台北101店、X 使用"]
