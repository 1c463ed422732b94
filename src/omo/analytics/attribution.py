"""Which ads brought the sales: every counted order of a period credited to the member's ad
clicks (utm source and campaign) in the lookback window before it, by first touch and by last
touch, with revenue and the discounts given; orders rung up in a store after an online click
are the online-to-store credit. Orders without a click (guests' too) stay unattributed.

Two ordered reads (orders, clicks) and one pass in memory with a per-member pointer."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from omo.analytics.periods import period
from omo.analytics.schemas import Attribution, Credit, SalesChannel
from omo.commerce import service as commerce
from omo.commerce.channels import OFFLINE_CHANNELS
from omo.db import UnitOfWork
from omo.events import service as events
from omo.shared.errors import ValidationFailed
from omo.shared.money import from_cents

NONE = "(none)"


@dataclass
class Tally:
    orders: int = 0
    revenue: int = 0
    discount: int = 0
    store_orders: int = 0
    store_revenue: int = 0
    attributed: int = 0

    def add(self, revenue: int, discount: int, *, in_store: bool) -> None:
        self.orders += 1
        self.revenue += revenue
        self.discount += discount
        if in_store:
            self.store_orders += 1
            self.store_revenue += revenue


@dataclass
class Clicks:
    times: list[datetime] = field(default_factory=list)
    keys: list[tuple[str, str, str]] = field(default_factory=list)


def attribution(
    uow: UnitOfWork, *, since: datetime | None, until: datetime | None, lookback_days: int
) -> Attribution:
    if not 1 <= lookback_days <= 365:
        raise ValidationFailed("lookback_days must be 1 … 365", field="query.lookback_days")
    since, until = period(since, until)
    window = timedelta(days=lookback_days)
    with uow.read() as session:
        orders = commerce.attributable_orders(session, since=since, until=until)
        clicks: dict[int, Clicks] = defaultdict(Clicks)
        for member_id, at, channel, source, campaign in events.ad_clicks(
            session, since=since - window, until=until
        ):
            found = clicks[member_id]
            found.times.append(at)
            found.keys.append((source or NONE, campaign or NONE, channel))
    first: dict[tuple[str, str, str], Tally] = defaultdict(Tally)
    last: dict[tuple[str, str, str], Tally] = defaultdict(Tally)
    channels: dict[str, Tally] = defaultdict(Tally)
    unattributed = Tally()
    for member_id, channel, at, revenue, discount in orders:
        in_store = channel in OFFLINE_CHANNELS
        revenue, discount = int(revenue), int(discount or 0)
        channels[channel].add(revenue, discount, in_store=in_store)
        seen = clicks.get(member_id) if member_id is not None else None
        lo = bisect_left(seen.times, at - window) if seen else 0
        hi = bisect_right(seen.times, at) if seen else 0
        if not seen or lo >= hi:
            unattributed.add(revenue, discount, in_store=in_store)
            continue
        channels[channel].attributed += 1
        first[seen.keys[lo]].add(revenue, discount, in_store=in_store)
        last[seen.keys[hi - 1]].add(revenue, discount, in_store=in_store)
    return Attribution(
        period_from=since, period_to=until, lookback_days=lookback_days,
        first_touch=_credits(first), last_touch=_credits(last),
        channels=[
            SalesChannel(channel=c, orders=t.orders, revenue=from_cents(t.revenue),
                         discount=from_cents(t.discount), attributed_orders=t.attributed)
            for c, t in sorted(channels.items())
        ],
        unattributed_orders=unattributed.orders,
        unattributed_revenue=from_cents(unattributed.revenue),
    )  # fmt: skip


def _credits(tallies: dict[tuple[str, str, str], Tally]) -> list[Credit]:
    ranked = sorted(tallies.items(), key=lambda kv: (-kv[1].revenue, kv[0]))
    return [
        Credit(source=source, campaign=campaign, channel=channel, orders=t.orders,
               revenue=from_cents(t.revenue), discount=from_cents(t.discount),
               store_orders=t.store_orders, store_revenue=from_cents(t.store_revenue))
        for (source, campaign, channel), t in ranked
    ]  # fmt: skip
