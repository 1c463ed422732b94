"""Holes in a till's receipt numbers (checkout/dayclose/gaps.py, pure)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from omo.checkout.dayclose.gaps import receipt_gaps


@given(st.sets(st.integers(min_value=1, max_value=400), min_size=2, max_size=400), st.booleans())
def test_the_numbers_missing_between_the_first_and_last_are_named(
    numbers: set[int], other_till: bool
) -> None:
    receipts = [f"T1-{n:06d}" for n in numbers]
    if other_till:  # another till's sequence, with no holes, stays apart
        receipts += [f"T2-{n:06d}" for n in range(1, 30)]
    first, last = min(numbers), max(numbers)
    holes = [n for n in range(first, last + 1) if n not in numbers]
    got = receipt_gaps(receipts)
    if not holes or len(numbers) < 0.5 * (last - first + 1):
        assert got == []  # complete, or too sparse to be a sequence
        return
    (gap,) = got
    assert (gap.prefix, gap.first, gap.last) == ("T1-", f"T1-{first:06d}", f"T1-{last:06d}")
    assert gap.missing == [f"T1-{n:06d}" for n in holes[:50]]
    assert (gap.missing_count, gap.recorded) == (len(holes), len(numbers))


def test_ids_that_are_not_a_sequence_give_nothing() -> None:
    random_ids = [f"UI-TPE-101-{uuid.uuid4().hex[:12]}" for _ in range(200)]
    stamps = [f"R-20261206-{h:02d}{m:02d}{s:02d}" for h, m, s in ((9, 1, 5), (12, 30, 0),
                                                                (18, 45, 59))]  # fmt: skip
    assert receipt_gaps([*random_ids, *stamps, "NO-DIGITS", "7"]) == []


def test_a_width_is_part_of_the_sequence() -> None:
    got = receipt_gaps(["A-0998", "A-1000", "A-01001", "A-01003"])
    assert [(g.first, g.missing) for g in got] == [("A-0998", ["A-0999"]), ("A-01001", ["A-01002"])]
