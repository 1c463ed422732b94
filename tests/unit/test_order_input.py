"""OrderIn: an order that does not add up, or cannot have happened as stated, is refused."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from omo.commerce.channels import Fulfilment
from omo.commerce.schemas import OrderIn

BASE: dict[str, Any] = {
    "channel": "web",
    "external_id": "W-1",
    "ordered_at": "2026-01-01T10:00:00+08:00",
    "lines": [{"sku": "A", "quantity": 2, "unit_price": "150.00", "discount": "20"}],
}


def order(**kw: Any) -> OrderIn:
    return OrderIn.model_validate({**BASE, **kw})


def refused(**kw: Any) -> str:
    with pytest.raises(ValidationError) as info:
        order(**kw)
    return str(info.value)


def test_total_is_computed_and_checked() -> None:
    o = order(discount_total="30", shipping_fee="60")
    assert o.total == Decimal("310.00")  # 2 × 150 - 20 - 30 + 60
    assert order(total="310", discount_total="30", shipping_fee="60").total == Decimal("310")
    assert "does not equal" in refused(total="311", discount_total="30", shipping_fee="60")


def test_discounts_cannot_exceed_what_they_discount() -> None:
    assert "exceeds the subtotal" in refused(discount_total="281")
    line = {"sku": "A", "quantity": 1, "unit_price": "10", "discount": "11"}
    assert "exceeds the line" in refused(lines=[line])


def test_fulfilment_defaults_and_rules() -> None:
    assert order().fulfilment == Fulfilment.DELIVERY
    pos = order(channel="pos", store="TPE-101")
    assert pos.fulfilment == Fulfilment.IN_STORE
    assert order(fulfilment="store_pickup", store="TPE-101").fulfilment == Fulfilment.STORE_PICKUP
    assert "store: required" in refused(channel="pos")
    assert "store: required" in refused(fulfilment="store_pickup")
    assert "pos order is fulfilled in_store" in refused(
        channel="pos", store="TPE-101", fulfilment="delivery"
    )
    assert "online orders use store_pickup" in refused(fulfilment="in_store", store="TPE-101")


@pytest.mark.parametrize(
    "change",
    [
        {"ordered_at": "2026-01-01T10:00:00"},  # no time zone: ambiguous
        {"external_id": "has space"},
        {"external_id": ""},
        {"lines": []},
        {"currency": "twd"},
        {"channel": "fax"},
        {"member_id": 0},
        {"surprise": True},
        {"lines": [{"sku": "A", "quantity": 0, "unit_price": "1"}]},
        {"lines": [{"sku": "A", "quantity": 1, "unit_price": "0.001"}]},
        {"lines": [{"sku": "A", "quantity": 1, "unit_price": "-5"}]},
    ],
)
def test_malformed_orders_are_refused(change: dict[str, Any]) -> None:
    refused(**change)


prices = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False)


@given(st.lists(st.tuples(st.integers(1, 50), prices), min_size=1, max_size=20), prices)
def test_total_is_exact_for_any_lines(lines: list[tuple[int, Decimal]], shipping: Decimal) -> None:
    o = order(
        lines=[
            {"sku": f"S{n}", "quantity": q, "unit_price": str(p)} for n, (q, p) in enumerate(lines)
        ],
        shipping_fee=str(shipping),
    )
    assert o.total == sum((q * p for q, p in lines), Decimal(0)) + shipping
    assert o.total is not None
    assert o.total.as_tuple().exponent >= -2
