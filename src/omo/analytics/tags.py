"""A member's tags as stored: the automatic ones of the figures (high value, price sensitive,
omnichannel, dormant) and one `bought:<category>` per category they have bought, as a JSON list
per member. Rules test them with `tag("bought:帽子")` (analytics/rules.py)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TAGS = ("high_value", "price_sensitive", "omnichannel", "dormant")
BOUGHT = "bought:"


def categories_bought(lines: Any, orders: Any, *, as_of_s: int) -> Any:
    """(member_id, categories): the distinct categories of each member's purchases."""
    bought = orders.filter(orders.ordered_s <= as_of_s)
    joined = lines.join(bought, lines.order_id == bought.order_id)
    pairs = joined.select(member_id=joined.member_id, category=joined.category)
    pairs = pairs.filter(pairs.category.notnull() & (pairs.category != "")).distinct()
    return pairs.group_by("member_id").aggregate(categories=pairs.category.collect())


def tag_lists(figures: pa.Table, categories: pa.Table) -> pa.Array:
    """One JSON list of tags per row of `figures` (which holds a boolean column tag_<name> for
    each of TAGS), the member's categories after the automatic tags, sorted."""
    n = figures.num_rows
    flags = np.zeros(n, dtype=np.int64)
    for bit, tag in enumerate(TAGS):
        flags |= np.asarray(figures[f"tag_{tag}"].to_numpy(zero_copy_only=False), bool) << bit
    fixed = [[t for bit, t in enumerate(TAGS) if code >> bit & 1] for code in range(2 ** len(TAGS))]
    where = pc.index_in(figures["member_id"], value_set=categories["member_id"]).to_numpy(
        zero_copy_only=False
    )
    lists = categories["categories"].to_pylist()
    out = []
    for row, code in enumerate(flags.tolist()):
        found = where[row]
        bought = [] if found is None or np.isnan(found) else sorted(lists[int(found)])
        out.append(json.dumps(fixed[code] + [BOUGHT + c for c in bought]))
    return pa.array(out, type=pa.string())
