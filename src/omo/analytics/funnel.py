"""The funnel of a period per channel — reached → viewed → carted → ordered → picked up →
repurchased, distinct identified members at each stage — with cart abandonment and the
cross-channel figures: buy online pick up in store, store customers ordering online.

Set-based SQL on the store over the events' and orders' own selections (one read transaction);
anonymous events and guest orders have no member and are left out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select, union_all

from omo.analytics.periods import period, share
from omo.analytics.schemas import Funnel, FunnelStage
from omo.commerce import service as commerce
from omo.commerce.channels import OFFLINE_CHANNELS
from omo.db import UnitOfWork
from omo.events import service as events
from omo.members import service as members

ALL = "all"
_STAGES = ("reached", "viewed", "carted", "ordered", "picked_up", "repurchased")


def funnel(uow: UnitOfWork, *, since: datetime | None, until: datetime | None) -> Funnel:
    since, until = period(since, until)
    touches = events.member_touches(since=since, until=until).subquery()
    bought = commerce.member_purchases(since=since, until=until).subquery()
    per_member = (
        select(bought.c.member_id, func.count().label("n")).group_by(bought.c.member_id).subquery()
    )
    steps = union_all(
        select(touches.c.channel, touches.c.member_id, touches.c.kind.label("stage")),
        select(bought.c.channel, bought.c.member_id, literal("order").label("stage")),
        select(bought.c.channel, bought.c.member_id, literal("pickup").label("stage")).where(
            bought.c.fulfilment == "store_pickup"
        ),
    ).subquery()

    def reached(stage: str) -> Any:
        return func.max(case((steps.c.stage == stage, 1), else_=0))

    # one row per member and channel with a flag per stage; counted per channel and, a member
    # counted once, for all channels
    per_channel_member = (
        select(
            steps.c.channel, steps.c.member_id, reached("view"), reached("add_to_cart"),
            reached("order"), reached("pickup"), func.max(per_member.c.n),
        )
        .outerjoin(per_member, per_member.c.member_id == steps.c.member_id)
        .group_by(steps.c.channel, steps.c.member_id)
    )  # fmt: skip
    carts = events.first_adds(since=since, until=until).subquery()
    converted = commerce.ordered_after(
        carts.c.member_id, carts.c.channel, carts.c.first_add, until=until
    )
    online = ~bought.c.channel.in_(sorted(OFFLINE_CHANNELS))
    people = members.all_ids().subquery()
    store_customers = (
        select(func.count())
        .select_from(people)
        .where(commerce.bought_in_store_before(people.c.member_id, before=since))
    )
    store_before = commerce.bought_in_store_before(bought.c.member_id, before=since)
    with uow.read() as session:
        rows: dict[str, list[int]] = {}
        everyone: dict[int, list[int]] = {}
        for channel, member_id, *flags, orders in session.execute(per_channel_member):
            mine = [1, *flags, int(bool(flags[2]) and (orders or 0) >= 2)]
            rows[channel] = [a + b for a, b in zip(rows.get(channel, [0] * 6), mine, strict=True)]
            seen = everyone.setdefault(member_id, [0] * 6)
            everyone[member_id] = [max(a, b) for a, b in zip(seen, mine, strict=True)]
        rows[ALL] = [sum(column) for column in zip(*everyone.values(), strict=True)] or [0] * 6
        abandon: dict[str, tuple[int, int]] = {
            str(channel): (int(n), int(n) - int(done))
            for channel, n, done in session.execute(
                select(
                    carts.c.channel, func.count(),
                    func.coalesce(func.sum(case((converted, 1), else_=0)), 0),
                ).group_by(carts.c.channel)
            )
        }  # fmt: skip
        online_orders, pickups = session.execute(
            select(
                func.count(),
                func.coalesce(
                    func.sum(case((bought.c.fulfilment == "store_pickup", 1), else_=0)), 0
                ),
            ).where(online)
        ).one()
        store_n = session.scalar(store_customers)
        store_online = session.scalar(
            select(func.count(func.distinct(bought.c.member_id))).where(online, store_before)
        )
    abandon[ALL] = (sum(n for n, _ in abandon.values()), sum(a for _, a in abandon.values()))
    stages = []
    for channel in sorted(rows, key=lambda c: (c == ALL, c)):
        n, gone = abandon.get(channel, (0, 0))
        stages.append(
            FunnelStage(
                channel=channel,
                **dict(zip(_STAGES, rows[channel], strict=True)),
                carts=n,
                abandoned=gone,
                cart_abandonment_rate=share(gone, n),
            )
        )
    return Funnel(
        period_from=since, period_to=until, channels=stages,
        online_orders=int(online_orders), pickup_orders=int(pickups),
        pickup_share=share(int(pickups), int(online_orders)),
        store_customers=int(store_n or 0), store_customers_online=int(store_online or 0),
        store_to_online_rate=share(int(store_online or 0), int(store_n or 0)),
    )  # fmt: skip
