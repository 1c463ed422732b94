"""Holes in a till's receipt numbers (pure): a till that numbers its receipts in sequence
(T1-000123, T1-000124 …) and recorded 121, 122 and 124 on a day has lost 123, or voided it —
either way someone should look, and no journal is needed to see it.

Numbers are grouped by what comes before their trailing digits (one group per till and day, as
tills number them); a group is read only when its numbers are dense (at least half of the range
between its first and last recorded), so ids that are not a sequence (a timestamp, a random
suffix) give nothing. What lies before the first or after the last of the day cannot be seen."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from omo.checkout.dayclose.schemas import ReceiptGap

_NUMBERED = re.compile(r"^(.*?)(\d+)$")
MIN_DENSITY = 0.5
SHOWN = 50  # missing numbers listed per till; the count says the rest


def receipt_gaps(receipts: Iterable[str]) -> list[ReceiptGap]:
    groups: dict[tuple[str, int], set[int]] = defaultdict(set)
    for receipt in receipts:
        found = _NUMBERED.match(receipt)
        if found:  # the width is part of the group: T1-0999 and T1-01000 are not one sequence
            groups[(found.group(1), len(found.group(2)))].add(int(found.group(2)))
    gaps = []
    for (prefix, width), numbers in sorted(groups.items()):
        first, last = min(numbers), max(numbers)
        span = last - first + 1
        if len(numbers) < 2 or len(numbers) == span or len(numbers) < MIN_DENSITY * span:
            continue
        missing = [n for n in range(first, last + 1) if n not in numbers]
        gaps.append(
            ReceiptGap(
                prefix=prefix, first=f"{prefix}{first:0{width}d}",
                last=f"{prefix}{last:0{width}d}", recorded=len(numbers),
                missing=[f"{prefix}{n:0{width}d}" for n in missing[:SHOWN]],
                missing_count=len(missing),
            )
        )  # fmt: skip
    return gaps
