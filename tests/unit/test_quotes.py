"""Sealed quotes (checkout/quotes.py, pure): what a quote priced comes back as it was, and a
token this server did not make, one changed on the way, or one past its half hour is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omo.checkout.quotes import VALID, Sealed, seal, unseal
from omo.checkout.schemas import QuoteRequest
from omo.shared.errors import ValidationFailed

NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
REQ = QuoteRequest.model_validate({
    "member_id": 7, "channel": "pos", "store": "TPE-101", "coupon_codes": ["ABCD-EFGH-JKMN"],
    "lines": [{"sku": "保溫杯", "quantity": 2}, {"sku": "B", "quantity": 1, "unit_price": "99.5"}],
    "points": 120,
})  # fmt: skip


def test_a_sealed_quote_opens_to_what_it_priced() -> None:
    token = seal(REQ, total=Decimal("1280.50"), now=NOW, secret="s")
    sealed = unseal(token, secret="s")
    assert (sealed.req, sealed.total) == (REQ, Decimal("1280.50"))
    sealed.fresh(NOW + VALID - timedelta(seconds=1))


def test_refused_when_not_ours_changed_or_old() -> None:
    token = seal(REQ, total=Decimal(1), now=NOW, secret="s")
    head, payload, sig = token.split(".")
    other = seal(REQ.model_copy(update={"points": 0}), total=Decimal(1), now=NOW, secret="s")
    for bad in (
        "",
        "Q1",
        "nonsense",
        f"{head}.{payload}.{sig[:-1]}A",
        f"{head}.{other.split('.')[1]}.{sig}",
        f"Q2.{payload}.{sig}",
        token + ".x",
    ):
        with pytest.raises(ValidationFailed) as refused:
            unseal(bad, secret="s")
        assert refused.value.code == "bad_quote", bad
    with pytest.raises(ValidationFailed):
        unseal(token, secret="another key")
    with pytest.raises(ValidationFailed) as late:
        unseal(token, secret="s").fresh(NOW + VALID)
    assert late.value.code == "quote_expired"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=20).filter(str.strip), st.integers(1, 99)),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 10_000),
    st.decimals(min_value=0, max_value=10**7, places=2),
)
def test_any_basket_comes_back_whole(
    lines: list[tuple[str, int]], pts: int, total: Decimal
) -> None:
    req = QuoteRequest.model_validate({
        "channel": "web", "points": pts,
        "lines": [{"sku": sku.strip()[:64], "quantity": q} for sku, q in lines],
    })  # fmt: skip
    assert unseal(seal(req, total=total, now=NOW, secret="k"), secret="k") == Sealed(
        req, total, NOW + VALID)  # fmt: skip


def test_a_refused_coupon_is_named_by_its_first_place_in_the_sale() -> None:
    from omo.checkout.schemas import QuoteRequest
    from omo.checkout.service import coupon_field

    req = QuoteRequest.model_validate({
        "channel": "pos", "lines": [{"sku": "A", "quantity": 1, "unit_price": "1"}],
        "coupon_codes": ["GOOD-0000-0001", "abcd efgh ijk1", "ABCD-EFGH-IJKL"],
    })  # fmt: skip
    # the till's spelling and OMO's are one code: its first place
    assert coupon_field(req, "ABCD-EFGH-IJKL") == "coupon_codes.1"
    assert coupon_field(req, "good-oooo-ooo1") == "coupon_codes.0"
    assert coupon_field(req, "PICKED-BY-OMO") == "coupon_codes"  # not one the sale named
