"""Members' recent behaviour from their events, for the rule language: product views, adds to
cart and ad clicks in the last 30 days, and the score of their last NPS answer (in the
snapshot's 90 days)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DAY = 86_400
RECENT_DAYS = 30
COUNTS = {"views_30d": "view", "carts_30d": "add_to_cart", "ad_clicks_30d": "ad_click"}


def event_figures(events: Any, *, as_of_s: int) -> Any:
    """(member_id, views_30d, carts_30d, ad_clicks_30d, nps_last) per member with events."""
    seen = events.filter(events.occurred_s <= as_of_s)
    recent = seen.occurred_s > as_of_s - RECENT_DAYS * DAY
    nps = (seen.kind == "feedback") & (seen.survey == "nps")
    found = seen.group_by("member_id").aggregate(
        **{
            name: ((seen.kind == kind) & recent).cast("int64").sum()
            for name, kind in COUNTS.items()
        },
        # the latest answer; at one instant the higher score, so every engine picks the same
        nps_key=(seen.occurred_s * 16 + seen.score).max(where=nps),
    )
    return found.mutate(nps_last=found.nps_key % 16).drop("nps_key")


def aligned(member_ids: pa.Array | pa.ChunkedArray, found: pa.Table) -> dict[str, pa.Array]:
    """The event figures in the order of `member_ids`: 0 counts and no NPS for members without
    events."""
    where = pc.index_in(member_ids, value_set=found["member_id"])
    out = {}
    for name in COUNTS:
        taken = pc.fill_null(pc.take(found[name], where), 0)
        out[name] = pa.array(np.asarray(taken.to_numpy(zero_copy_only=False), dtype=np.int64))
    out["nps_last"] = pc.take(found["nps_last"], where)
    return out
