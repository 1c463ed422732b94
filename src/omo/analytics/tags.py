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


SEP = ","  # between category codes in a member's key


def categories_bought(sold: Any) -> Any:
    """(member_id, categories): each member's distinct category codes bought, sorted, from the
    lines of their purchases (`sold`, see analytics/sales.py)."""
    pairs = sold.select(sold.member_id, sold.category)
    pairs = pairs.filter(pairs.category.notnull()).distinct()
    listed = pairs.group_by("member_id").aggregate(categories=pairs.category.collect())
    return listed.select(listed.member_id, categories=listed.categories.sort())


def tag_lists(figures: pa.Table, categories: pa.Table, names: pa.Array) -> pa.Array:
    """One JSON list of tags per row of `figures` (which holds a boolean column tag_<name> for
    each of TAGS): the automatic tags, then `bought:<category>` for the member's categories
    (codes into `names`), in the names' order. Built once per distinct (automatic tags,
    categories) pair, not once per member."""
    n = figures.num_rows
    flags = np.zeros(n, dtype=np.int64)
    for bit, tag in enumerate(TAGS):
        flags |= np.asarray(figures[f"tag_{tag}"].to_numpy(zero_copy_only=False), bool) << bit
    # each member's codes as one short string, so members with the same set share it
    spelled_codes = pc.binary_join(pc.cast(categories["categories"], pa.list_(pa.string())), SEP)
    where = pc.index_in(figures["member_id"], value_set=categories["member_id"])
    keys = pc.fill_null(pc.take(spelled_codes, where), "")
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    encoded = pc.dictionary_encode(keys)
    sets = encoded.dictionary.to_pylist()
    combos, inverse = np.unique(
        flags * len(sets) + encoded.indices.to_numpy(zero_copy_only=False), return_inverse=True
    )
    spelled = []
    for combo in combos.tolist():
        code, which = divmod(combo, len(sets))
        fixed = [t for bit, t in enumerate(TAGS) if code >> bit & 1]
        bought = sorted(names[int(c)].as_py() for c in sets[which].split(SEP) if c)
        bought = [BOUGHT + c for c in bought]
        spelled.append(json.dumps(fixed + bought))
    return pa.array(np.asarray(spelled, dtype=object)[inverse], type=pa.string())
