"""Identifier normalisation: every spelling of one identifier gives one canonical value."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omo.members.identifiers import (
    IdentifierKind,
    InvalidIdentifier,
    _parse_phone,
    normalise,
    normalise_phone,
)


@pytest.mark.parametrize(
    "spelling",
    [
        "0912345678",
        "0912-345-678",
        "0912 345 678",
        "+886 912 345 678",
        "+886-912-345-678",
        "886912345678",
        "(09)12345678",
        "０９１２３４５６７８",  # full-width digits typed on a phone keyboard
        " 0912345678 ",
    ],
)
def test_mobile_spellings_agree(spelling: str) -> None:
    assert normalise("phone", spelling).value == "+886912345678"


def test_landlines_and_foreign_numbers() -> None:
    assert normalise("phone", "02-2345-6789").value == "+886223456789"
    assert normalise("phone", "(07) 345-6789").value == "+88673456789"
    assert normalise("phone", "+81 90-1234-5678").value == "+819012345678"
    # the region decides how a number without a country code is read
    assert normalise("phone", "090-1234-5678", region="JP").value == "+819012345678"


@pytest.mark.parametrize("bad", ["12", "0912", "abc", "0912-345-67890123", "+886 000"])
def test_impossible_phones_are_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalise("phone", bad)


def test_emails_fold_case_and_width() -> None:
    assert normalise("email", "  Mei.Ling@Example.COM ").value == "mei.ling@example.com"
    assert normalise("email", "ｍｅｉ＠ｅｘａｍｐｌｅ．ｃｏｍ").value == "mei@example.com"
    for bad in ["mei", "mei@", "@example.com", "mei@example", "a b@example.com", "a@b@c.com"]:
        with pytest.raises(InvalidIdentifier):
            normalise("email", bad)
    with pytest.raises(InvalidIdentifier):
        normalise("email", "a" * 250 + "@example.com")


def test_cards_line_ids_and_tokens() -> None:
    assert normalise("card", "omo 0012-3456").value == "OMO00123456"
    with pytest.raises(InvalidIdentifier):
        normalise("card", "12")
    line = "U" + "ab12" * 8
    assert normalise("line_id", line.upper().replace("U", "u", 1)).value == line
    with pytest.raises(InvalidIdentifier):
        normalise("line_id", "@omo_official")
    assert normalise("app_user", "usr_8842").value == "usr_8842"
    with pytest.raises(InvalidIdentifier):
        normalise("app_user", "has space")


def test_namespaces_are_required_exactly_where_ids_are_someone_elses() -> None:
    shopee = normalise("marketplace_buyer", "buyer.tw88", "Shopee")
    assert (shopee.kind, shopee.namespace) == (IdentifierKind.MARKETPLACE_BUYER, "shopee")
    assert shopee != normalise("marketplace_buyer", "buyer.tw88", "momo")
    with pytest.raises(InvalidIdentifier, match="namespace"):
        normalise("marketplace_buyer", "buyer.tw88")
    with pytest.raises(InvalidIdentifier, match="namespace"):
        normalise("social_login", "1234", "myspace")
    with pytest.raises(InvalidIdentifier, match="no namespace"):
        normalise("phone", "0912345678", "shopee")


def test_unknown_kinds_and_empty_values() -> None:
    with pytest.raises(InvalidIdentifier, match="unknown identifier kind"):
        normalise("fax", "02-1234-5678")
    with pytest.raises(InvalidIdentifier, match="empty"):
        normalise("email", "   ")


mobiles = st.from_regex(r"09[0-9]{8}", fullmatch=True)
SPELLINGS = [
    lambda n: n,
    lambda n: f"{n[:4]}-{n[4:7]}-{n[7:]}",
    lambda n: f"{n[:4]} {n[4:7]} {n[7:]}",
    lambda n: f"+886 {n[1:]}",
    lambda n: n.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
]


@given(mobiles, st.sampled_from(SPELLINGS))
def test_normalising_is_idempotent_and_spelling_blind(number: str, spell: Any) -> None:
    canonical = normalise("phone", number).value
    assert normalise("phone", spell(number)).value == canonical
    assert normalise("phone", canonical).value == canonical


@given(st.emails())
def test_email_normalisation_is_idempotent(email: str) -> None:
    try:
        once = normalise("email", email).value
    except InvalidIdentifier:
        return
    assert normalise("email", once).value == once


TW_SPELLINGS = st.one_of(
    st.from_regex(
        r"(\+886|886|0|\+8860|00|)[ -]?9[0-9]{2}[ -]?[0-9]{3}[ -]?[0-9]{3}", fullmatch=True
    ),
    st.from_regex(r"\(?0?[0-9]{1,2}\)?[ -]?[0-9]{3,4}[ -]?[0-9]{3,5}", fullmatch=True),
)


@given(TW_SPELLINGS, st.sampled_from(["TW", "JP", "US"]))
def test_the_mobile_fast_path_agrees_with_libphonenumber(text: str, region: str) -> None:
    try:
        slow: str | None = _parse_phone(text, region)
    except InvalidIdentifier:
        slow = None
    try:
        fast: str | None = normalise_phone(text, region)
    except InvalidIdentifier:
        fast = None
    assert fast == slow
