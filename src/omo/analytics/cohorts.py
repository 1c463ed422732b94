"""Monthly acquisition cohorts × retention: members by the month they joined, and how many of
each cohort bought in each month after (month 0 = the month of joining).

Months are the brand's local calendar months, computed from epoch seconds with integer
arithmetic only (days → civil date, H. Hinnant's algorithm), so DuckDB and Spark agree without
either engine's time-zone rules."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

DAY = 86_400


def month_index(seconds: Any, *, utc_offset_s: int) -> Any:
    """Months since January 1970 (0 = 1970-01) of an epoch-seconds column, local time."""
    z = (seconds + utc_offset_s) // DAY + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153  # March = 0
    march_based = (yoe + era * 400) * 12 + mp  # months since March of year 0
    return march_based + 2 - 1970 * 12  # → months since January 1970


def cohort_counts(members: Any, orders: Any, *, as_of_s: int, utc_offset_s: int) -> tuple[Any, Any]:
    """Two expressions: (cohort_month, size) — members by month of joining up to `as_of_s` —
    and (cohort_month, months_since, active) — distinct cohort members with a purchase in the
    months_since-th month after joining (only months with a purchase)."""
    joined = members.filter(members.joined_s <= as_of_s)
    joined = joined.mutate(cohort_month=month_index(joined.joined_s, utc_offset_s=utc_offset_s))
    sizes = joined.group_by("cohort_month").aggregate(size=joined.count())
    bought = orders.filter(orders.ordered_s <= as_of_s)
    bought = bought.mutate(month=month_index(bought.ordered_s, utc_offset_s=utc_offset_s))
    visits = bought.join(joined, bought.member_id == joined.member_id)
    visits = visits.mutate(months_since=visits.month - visits.cohort_month)
    visits = visits.filter(visits.months_since >= 0)  # guest orders attached later: before joining
    active = visits.group_by(["cohort_month", "months_since"]).aggregate(
        active=visits.member_id.nunique()
    )
    return sizes, active


def retention_table(sizes: pa.Table, active: pa.Table, *, last_month: int) -> pa.Table:
    """The dense grid: every cohort × every month from joining to `last_month`, 0 where no one
    bought; cohorts named YYYY-MM."""
    bought = {
        (c, k): n
        for c, k, n in zip(
            active["cohort_month"].to_pylist(),
            active["months_since"].to_pylist(),
            active["active"].to_pylist(),
            strict=True,
        )
    }
    rows: dict[str, list[Any]] = {"cohort": [], "months_since": [], "size": [], "active": []}
    for cohort, size in sorted(
        zip(sizes["cohort_month"].to_pylist(), sizes["size"].to_pylist(), strict=True)
    ):
        for k in range(last_month - cohort + 1):
            rows["cohort"].append(f"{1970 + cohort // 12:04d}-{cohort % 12 + 1:02d}")
            rows["months_since"].append(k)
            rows["size"].append(size)
            rows["active"].append(bought.get((cohort, k), 0))
    return pa.table(rows, schema=SCHEMA)


def month_of(seconds: int, *, utc_offset_s: int) -> int:
    """month_index for one Python integer (the same arithmetic)."""
    return int(month_index(seconds, utc_offset_s=utc_offset_s))


SCHEMA = pa.schema(
    [("cohort", pa.string()), ("months_since", pa.int64()), ("size", pa.int64()),
     ("active", pa.int64())]
)  # fmt: skip
