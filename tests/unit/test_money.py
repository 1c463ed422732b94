"""Money rounded to what the tills take (shared/money.py, Settings.price_unit)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omo.shared.money import CENT, floor_to_unit, to_unit


@pytest.mark.parametrize(
    ("value", "unit", "half_up", "floor"),
    [
        ("39.5", "1", "40.00", "39.00"),
        ("39.49", "1", "39.00", "39.00"),
        ("109.845", "0.01", "109.85", "109.84"),
        ("74.99", "5", "75.00", "70.00"),
        ("1234", "10", "1230.00", "1230.00"),
        ("1235", "10", "1240.00", "1230.00"),
        ("-0.5", "1", "-1.00", "-1.00"),
    ],
)
def test_to_a_unit(value: str, unit: str, half_up: str, floor: str) -> None:
    assert to_unit(Decimal(value), Decimal(unit)) == Decimal(half_up)
    assert floor_to_unit(Decimal(value), Decimal(unit)) == Decimal(floor)
    assert str(to_unit(Decimal(value), Decimal(unit))) == half_up  # written with the cents


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=6),
       st.sampled_from(["0.01", "0.05", "0.1", "1", "5", "10", "100"]))  # fmt: skip
def test_a_unit_holds_whole_numbers_of_it_and_is_never_further_than_half_away(
    value: Decimal, unit: str
) -> None:
    u = Decimal(unit)
    near, low = to_unit(value, u), floor_to_unit(value, u)
    assert near % u == 0 and low % u == 0
    assert abs(near - value) <= u / 2 and low <= value < low + u
    if u == CENT:
        assert near == value.quantize(CENT, rounding="ROUND_HALF_UP")


def test_an_amount_off_the_unit_is_named_by_its_field() -> None:
    """What a merchant sets is checked against the till's unit: the first field that is not a
    whole number of it is named; none, or a missing amount, passes."""
    from omo.shared.money import off_unit

    one = Decimal(1)
    assert off_unit({"amount": Decimal("50"), "cap": None}, one) is None
    assert off_unit({"amount": Decimal("50.00"), "cap": Decimal("99.5")}, one) == (
        "cap", Decimal("99.5"))  # fmt: skip
    assert off_unit({"amount": Decimal("50.5")}, Decimal("0.5")) is None
    assert off_unit({"amount": Decimal("50.55")}, CENT) is None
