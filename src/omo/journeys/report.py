"""What a journey did: who entered, what was sent, opened and clicked, who bought within the
conversion window — treatment against the held-out control group — and what it earned and cost.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, and_, case, func, select, type_coerce
from sqlalchemy.orm import Session

from omo.commerce.channels import COUNTED_STATUSES
from omo.commerce.models import Order
from omo.db import UnitOfWork
from omo.journeys import definition as d
from omo.journeys.models import Journey, JourneyEntry
from omo.journeys.schemas import GroupFigures, JourneyReport, Uplift
from omo.messaging.models import Message
from omo.shared.errors import NotFound
from omo.shared.money import ZERO, from_cents
from omo.shared.sqldates import days_between

Z95 = 1.959964


def cents(column: Any) -> Any:
    return type_coerce(column, BigInteger)


def uplift(converted_t: int, n_t: int, converted_c: int, n_c: int) -> Uplift | None:
    """Difference of conversion rates with a 95 % Wald interval (pure)."""
    if n_t == 0 or n_c == 0:
        return None
    p_t, p_c = converted_t / n_t, converted_c / n_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    diff = p_t - p_c
    low, high = diff - Z95 * se, diff + Z95 * se
    return Uplift(
        rate=round(diff, 6), low=round(low, 6), high=round(high, 6),
        significant=low > 0 or high < 0,
    )  # fmt: skip


def report(uow: UnitOfWork, *, key: str) -> JourneyReport:
    with uow.read() as session:
        journey = session.scalar(select(Journey).where(Journey.key == key))
        if journey is None:
            raise NotFound(f"no journey {key!r}", field="key")
        definition = d.JourneyDefinition.model_validate(journey.definition)
        key, version = journey.key, journey.version
        groups = _groups(session, journey.id, definition.conversion_days)
        states = dict(
            session.execute(
                select(Message.state, func.count())
                .where(Message.journey_id == journey.id)
                .group_by(Message.state)
            ).all()
        )
        reasons = dict(
            session.execute(
                select(Message.reason, func.count())
                .where(Message.journey_id == journey.id, Message.state == "suppressed")
                .group_by(Message.reason)
            ).all()
        )
        opened, clicked = session.execute(
            select(func.count(Message.opened_at), func.count(Message.clicked_at)).where(
                Message.journey_id == journey.id
            )
        ).one()
    t, c = groups["treatment"], groups["control"]
    sent = int(states.get("sent", 0))
    incremental = (t.revenue_per_member - c.revenue_per_member) * t.members
    incremental = incremental.quantize(Decimal("0.01"))
    return JourneyReport(
        key=key, version=version, conversion_days=definition.conversion_days,
        control_share=definition.control_share, treatment=t, control=c,
        uplift=uplift(t.converted, t.members, c.converted, c.members),
        messages={str(k): int(v) for k, v in states.items()},
        suppressed={str(k): int(v) for k, v in reasons.items()},
        opened=int(opened), clicked=int(clicked),
        open_rate=round(opened / sent, 4) if sent else 0.0,
        click_rate=round(clicked / sent, 4) if sent else 0.0,
        incremental_revenue=incremental, discount_cost=t.discount,
        roi=round(float((incremental - t.discount) / t.discount), 4) if t.discount else None,
    )  # fmt: skip


def _groups(session: Session, journey_id: int, window_days: int) -> dict[str, GroupFigures]:
    """Per entry: did the member buy within the window after entering, for how much; then per
    group. Net of refunds; cancelled orders do not count."""
    per_entry = (
        select(
            JourneyEntry.grp.label("grp"),
            func.count(Order.id).label("orders"),
            func.coalesce(func.sum(cents(Order.total) - cents(Order.refunded_total)), 0).label(
                "revenue"
            ),
            func.coalesce(func.sum(cents(Order.discount_total)), 0).label("discount"),
        )
        .select_from(JourneyEntry)
        .outerjoin(
            Order,
            and_(
                Order.member_id == JourneyEntry.member_id,
                Order.ordered_at >= JourneyEntry.entered_at,
                days_between(session, JourneyEntry.entered_at, Order.ordered_at) <= window_days,
                Order.status.in_(COUNTED_STATUSES),
            ),
        )
        .where(JourneyEntry.journey_id == journey_id)
        .group_by(JourneyEntry.id, JourneyEntry.grp)
        .subquery()
    )
    rows = session.execute(
        select(
            per_entry.c.grp, func.count(),
            func.sum(case((per_entry.c.orders > 0, 1), else_=0)),
            func.sum(per_entry.c.revenue), func.sum(per_entry.c.discount),
        ).group_by(per_entry.c.grp)
    )  # fmt: skip
    found = {
        str(g): (int(n), int(conv or 0), int(rev or 0), int(disc or 0))
        for g, n, conv, rev, disc in rows
    }
    out: dict[str, GroupFigures] = {}
    for group in ("treatment", "control"):
        n, converted, revenue, discount = found.get(group, (0, 0, 0, 0))
        money = from_cents(revenue)
        out[group] = GroupFigures(
            members=n, converted=converted,
            conversion_rate=round(converted / n, 6) if n else 0.0, revenue=money,
            revenue_per_member=(money / n).quantize(Decimal("0.01")) if n else ZERO,
            discount=from_cents(discount),
        )  # fmt: skip
    return out
