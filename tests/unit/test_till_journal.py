"""A till's journal pasted at closing (checkout/dayclose.parse_journal): whatever the POS put
between a receipt's number and its total, the receipts come back as they were; a bad line is
refused by its number."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omo.checkout.dayclose import parse_day, parse_journal
from omo.shared.errors import ValidationFailed

RECEIPT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                          exclude_characters=",;\""), min_size=1, max_size=20)  # fmt: skip
TOTAL = st.decimals(min_value=0, max_value=10_000_000, places=2, allow_nan=False)


@given(
    st.dictionaries(RECEIPT, TOTAL, max_size=30),
    st.sampled_from([",", "\t", " ", ";", "  \t", ',"']),
    st.booleans(),
    st.booleans(),
)
def test_any_journal_reads_back_as_written(
    receipts: dict[str, Decimal], sep: str, header: bool, thousands: bool
) -> None:
    def shown(total: Decimal) -> str:
        return f"NT${total:,.2f}" if thousands else f"{total}"

    lines = ["單號,金額"] if header else []
    quote = '"' if sep.endswith('"') else ""  # CSV: the total quoted, thousands and all
    lines += [f"{k}{sep}{shown(v)}{quote}" for k, v in receipts.items()]
    journal = parse_journal("\n".join(lines) + "\n\n")
    assert [(r.external_id, r.total) for r in journal.receipts] == list(receipts.items())


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("POS-1,1\nPOS-1,2", "line 2: 'POS-1' is listed twice"),
        ("POS-1 1\n\nPOS-2", "line 3: a receipt number and its total"),
        ("POS-1 1\nPOS-2 x", "line 2: total:"),
        ("POS-1 5-", "line 1: total:"),  # -5 is a return slip
        ("POS-1 abc\nPOS-2 1", "line 1: total:"),  # not taken for a header
        ("POS-1 1.005", "line 1: total: money has at most two decimal places"),
        ("單號 1", "line 1: external_id:"),
    ],
)
def test_a_bad_line_is_refused_by_its_number(text: str, said: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_journal(text)
    assert info.value.message.startswith(said), info.value.message
    assert info.value.field == "journal"


def test_a_day_is_a_date_or_today() -> None:
    assert str(parse_day("2026-12-06", "Asia/Taipei")) == "2026-12-06"
    assert parse_day(None, "Asia/Taipei") == parse_day("", "Asia/Taipei")
    with pytest.raises(ValidationFailed, match="YYYY-MM-DD"):
        parse_day("6/12/2026", "Asia/Taipei")


def test_a_full_days_journal_reads_in_one_pass_and_one_more_is_refused() -> None:
    import time

    lines = "\n".join(f"POS-{n:06d}\t{n % 5000}.50" for n in range(20_000))
    started = time.perf_counter()
    journal = parse_journal("單號\t金額\n" + lines)
    assert len(journal.receipts) == 20_000
    assert time.perf_counter() - started < 2  # each line once (it looked for the header anew)
    with pytest.raises(ValidationFailed, match="more than 20,000 receipts"):
        parse_journal(lines + "\nPOS-X 1")
