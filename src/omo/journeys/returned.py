"""What a return undoes of the journeys its order triggered (滿額贈券).

An order_spend journey gives a member something for an order that reaches a spend (單筆滿3000送
100元券). When a refund leaves the customer with less than that spend, the member leaves the
journey (no step still to come is taken: a coupon waiting behind a `wait` is never issued) and
the coupons it gave for the order that are not yet used are voided. A coupon already used
stays used. An order returned before the journeys' pass read it enters no one (runner)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.coupons import service as coupons
from omo.journeys import definition as d
from omo.journeys import runner
from omo.journeys.models import JourneyEntry
from omo.members import service as members


def withdraw_for_order(
    session: Session, *, order_id: int, member_id: int, kept: Decimal, now: datetime
) -> int:
    """After a refund of `order_id`, of which the customer keeps `kept`: end the member's
    entries of order_spend journeys the order no longer reaches and void the coupons they
    issued and the member has not used. Returns how many coupons were voided."""
    # the order's member and those merged into them: an entry stays with the member entered
    who = members.merge_tree(session, [member_id])
    entries = session.scalars(
        select(JourneyEntry).where(
            JourneyEntry.member_id.in_(who),
            # the occurrence is the OrderRecorded fact's key (ingest publishes it so)
            JourneyEntry.occurrence == f"order:{order_id}",
        )
    ).all()
    voided, definitions = 0, dict[tuple[int, int], d.JourneyDefinition]()
    for entry in entries:
        trigger = runner.definition_of(session, entry, definitions).trigger
        if not isinstance(trigger, d.OrderSpend) or kept >= trigger.min_total:
            continue
        if entry.state == "active":
            runner.finish(entry, "exited", now)
        # a step's coupon is issued under journey:{entry}:{step}
        voided += coupons.withdraw_unused(
            session, member_id=entry.member_id, template_codes=None, key=f"journey:{entry.id}",
            issued_since=entry.entered_at, holders=who,
        )  # fmt: skip
    return voided
