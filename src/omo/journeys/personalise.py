"""What a message may say about its member: name, tier, points and what expires, the coupon a
journey gave, the products in an abandoned cart, recommendations from the basket rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from omo.analytics import recommend
from omo.commerce import service as commerce
from omo.events import service as events
from omo.journeys.models import JourneyEntry
from omo.members import service as members
from omo.messaging import templates
from omo.points import service as points
from omo.tiers import service as tiers

CART_LOOKBACK = timedelta(days=7)


def context(
    session: Session, *, entry: JourneyEntry, template: str, now: datetime
) -> dict[str, Any]:
    """The values the template reads (only those: a balance or recommendations cost queries)."""
    member_id = entry.member_id
    used = templates.names_used(template)
    values: dict[str, Any] = {
        "coupon_code": entry.context.get("coupon_code", ""),
        "coupon_until": entry.context.get("coupon_until", ""),
    }
    if "tier" in used:
        values["tier"] = tiers.level_of(session, member_id=member_id).name
    if used & {"next_tier", "to_next"}:
        _, nxt, missing = tiers.progress_of(session, member_id=member_id, now=now)
        values["next_tier"] = nxt.name if nxt else ""
        values["to_next"] = _missing(nxt.metric, missing) if nxt and missing else ""
    if used & {"points", "expiring_points", "expiring_on"}:
        balance = points.summary_in(session, member_id=member_id, now=now)
        soonest = balance.expiring[0] if balance.expiring else None
        values["points"] = balance.available
        values["expiring_points"] = soonest.points if soonest else 0
        values["expiring_on"] = soonest.expires_at.date().isoformat() if soonest else ""
    if "recommended" in used:
        values["recommended"] = [
            {"sku": r.sku, "name": r.name or r.sku}
            for r in recommend.recommend_in(session, member_id=member_id, limit=3)
        ]
    if "cart" in used:
        skus = events.carted_skus(
            session, member_id=member_id, since=entry.entered_at - CART_LOOKBACK,
            until=entry.entered_at,
        )  # fmt: skip
        catalogue = commerce.catalogue_for(session, skus)
        values["cart"] = [
            {"sku": s, "name": catalogue[s].name if s in catalogue else s,
             "price": f"NT${catalogue[s].price:,.0f}" if s in catalogue else ""}
            for s in skus[:5]
        ]  # fmt: skip
    return values


def _missing(metric: str, missing: Decimal) -> str:
    """What is still needed for the next level, as a member reads it."""
    if metric == "spend":
        return f"NT${missing:,.0f}"
    return f"{missing:,.0f}"


def home_store(session: Session, member_id: int) -> int | None:
    """The store that looks after a member: where they joined, else where they last bought."""
    member = members.get_member(session, member_id)
    if member.join_store_id is not None:
        return member.join_store_id
    stats = commerce.stats_of(session, member_id)
    return stats.last_store_id if stats is not None else None
