"""New-product penetration: for every SKU first bought in the last `days` before the refresh's
date, how many members bought it, how many of them came back for it, and what share of the
members who bought anything since its first sale that is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

DAY = 86_400


def new_products(sold: Any, bought: Any, *, as_of_s: int, days: int) -> Any:
    """(sku, first_s, buyers, repeat_buyers, window_buyers) of SKUs first bought within `days`
    before `as_of_s`, from the lines of the purchases up to `as_of_s` (`sold`, see
    analytics/sales.py) and those purchases (`bought`); window_buyers = members with any
    purchase at or after that first sale."""
    launches = sold.group_by("sku").aggregate(first_s=sold.ordered_s.min())
    launched = launches.filter(launches.first_s >= as_of_s - days * DAY)
    # only the new SKUs' lines are grouped per member: a few, where all lines are millions
    sales = sold.semi_join(launched, sold.sku == launched.sku)
    per_member = sales.group_by(["sku", "member_id"]).aggregate(purchases=sales.count())
    counted = per_member.group_by("sku").aggregate(
        buyers=per_member.count(),
        repeat_buyers=(per_member.purchases >= 2).cast("int64").sum(),
    )
    new = launched.join(counted, launched.sku == counted.sku).select(
        launched.sku, launched.first_s, counted.buyers, counted.repeat_buyers
    )
    last = bought.group_by("member_id").aggregate(last_s=bought.ordered_s.max())
    pairs = new.select(new.sku, new.first_s).cross_join(last)
    pairs = pairs.filter(pairs.last_s >= pairs.first_s)
    window = pairs.group_by("sku").aggregate(window_buyers=pairs.count())
    return new.join(window, new.sku == window.sku).select(
        new.sku, new.first_s, new.buyers, new.repeat_buyers, window.window_buyers
    )


def penetration_table(
    found: pa.Table, *, utc_offset_s: int, skus: pa.Array | None = None
) -> pa.Table:
    """The rows to store: launch day (local), counts, penetration and repeat rate. With
    `skus`, found's SKUs are codes into it."""
    if skus is not None:
        found = found.set_column(0, "sku", pc.take(skus, found["sku"]))
    rows = found.to_pylist()
    local = timedelta(seconds=utc_offset_s)
    return pa.table(
        {
            "sku": [r["sku"] for r in rows],
            "launched": [
                (datetime.fromtimestamp(r["first_s"], UTC) + local).date().isoformat() for r in rows
            ],
            "buyers": [r["buyers"] for r in rows],
            "repeat_buyers": [r["repeat_buyers"] for r in rows],
            "window_buyers": [r["window_buyers"] for r in rows],
            "penetration": [r["buyers"] / r["window_buyers"] for r in rows],
            "repeat_rate": [r["repeat_buyers"] / r["buyers"] for r in rows],
        },
        schema=SCHEMA,
    )


SCHEMA = pa.schema(
    [("sku", pa.string()), ("launched", pa.string()), ("buyers", pa.int64()),
     ("repeat_buyers", pa.int64()), ("window_buyers", pa.int64()),
     ("penetration", pa.float64()), ("repeat_rate", pa.float64())]
)  # fmt: skip
