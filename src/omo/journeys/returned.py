"""What a return undoes of the journeys it took the reason away from.

An order_spend journey gives a member something for an order that reaches a spend (單筆滿3000送
100元券); a tier_changed journey for an upgrade (升等禮). When a refund leaves the customer
with less than that spend, or takes the upgrade back (tiers/returned.py), the member leaves
the journey (no step still to come is taken: a coupon waiting behind a `wait` is never issued)
and the coupons it gave that are not yet used are voided. A coupon already used stays used;
what it took off is answered, for a returns policy that keeps it back from the money. The
points its award_points steps gave are taken back, from what the member holds; those already
spent are written off, as a referral's bonus is (points.take_back_bonus). An entry
is withdrawn once: a later return of the same order finds it withdrawn. An order returned
before the journeys' pass read it enters no one (runner)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.coupons import service as coupons
from omo.journeys import definition as d
from omo.journeys import runner
from omo.journeys.models import JourneyEntry
from omo.members import service as members
from omo.points import service as points

WITHDRAWN = "withdrawn_at"  # in an entry's context: when a return took its reason away


@dataclass(frozen=True)
class Withdrawn:
    voided: int = 0  # unused coupons voided
    used_value: Decimal = Decimal(0)  # what the coupons already used took off
    points: int = 0  # points the journeys awarded, taken back
    points_short: int = 0  # of those, already spent: written off

    def __add__(self, other: Withdrawn) -> Withdrawn:
        return Withdrawn(
            self.voided + other.voided, self.used_value + other.used_value,
            self.points + other.points, self.points_short + other.points_short,
        )  # fmt: skip


def withdraw_for_order(
    session: Session, *, order_id: int, member_id: int, kept: Decimal, now: datetime
) -> Withdrawn:
    """After a refund of `order_id`, of which the customer keeps `kept`: the member's entries
    of order_spend journeys the order no longer reaches are ended and their unused coupons
    voided."""

    def undone(trigger: d.Trigger) -> bool:
        return isinstance(trigger, d.OrderSpend) and kept < trigger.min_total

    # the occurrence is the OrderRecorded fact's key (ingest publishes it so)
    return _withdraw(session, member_id, [f"order:{order_id}"], undone, now)


def withdraw_for_upgrades(
    session: Session, *, member_id: int, upgrades: Sequence[str], now: datetime
) -> Withdrawn:
    """After a return took upgrades back (their TierChanged facts' keys): the member's entries
    of tier_changed journeys those upgrades started are ended and their unused coupons
    voided."""

    def undone(trigger: d.Trigger) -> bool:
        return isinstance(trigger, d.TierChangedTrigger)

    return _withdraw(session, member_id, upgrades, undone, now) if upgrades else Withdrawn()


def _withdraw(
    session: Session, member_id: int, occurrences: Sequence[str],
    undone: Callable[[d.Trigger], bool], now: datetime,
) -> Withdrawn:  # fmt: skip
    # the member and those merged into them: an entry stays with the member entered, while a
    # merge moves the coupons to the survivor
    who = members.merge_tree(session, [member_id])
    entries = session.scalars(
        select(JourneyEntry).where(
            JourneyEntry.member_id.in_(who), JourneyEntry.occurrence.in_(list(occurrences))
        )
    ).all()
    done, definitions = Withdrawn(), dict[tuple[int, int], d.JourneyDefinition]()
    for entry in entries:
        if WITHDRAWN in entry.context:
            continue
        definition = runner.definition_of(session, entry, definitions)
        if not undone(definition.trigger):
            continue
        if entry.state == "active":
            runner.finish(entry, "exited", now)
        entry.context = {**entry.context, WITHDRAWN: now.isoformat()}
        # a step's coupon is issued under journey:{entry}:{step}
        key, since = f"journey:{entry.id}", entry.entered_at
        done += Withdrawn(
            coupons.withdraw_unused(session, member_id=entry.member_id, template_codes=None,
                                    key=key, issued_since=since, holders=who),
            coupons.used_value(session, member_id=entry.member_id, key=key, issued_since=since,
                               holders=who),
        )  # fmt: skip
        done += _points_back(session, entry, definition, now)
    return done


def _points_back(
    session: Session, entry: JourneyEntry, definition: d.JourneyDefinition, now: datetime
) -> Withdrawn:  # fmt: skip
    """Take back what the entry's award_points steps gave (a step's bonus is keyed
    journey:{entry}:{step}; one not yet taken gave nothing)."""
    done = Withdrawn()
    for index, step in enumerate(definition.steps):
        if not isinstance(step, d.AwardPoints):
            continue
        given = f"journey:{entry.id}:{index}"
        back = points.take_back_bonus(
            session, bonus_key=given, key=f"{given}:withdrawn", now=now, actor=None,
            reason=f"{step.reason}: its reason was returned ({entry.occurrence})",
        )  # fmt: skip
        if back is not None:
            done += Withdrawn(points=back.points, points_short=back.short)
    return done
