"""What discounts cost: the give-away ratio (discounts / goods at list price) overall, per
channel, per tier and per coupon template; the margin before and after discounts from the
products' unit costs; and per tier a recommended discount range that keeps a target margin.

Margins use the cost ratio of the lines whose product has a unit cost (cost_coverage says how
much that is) and apply it to the whole group. A tier is the member's level now; orders of
guests are the 'guest' group. Set-based SQL over the areas' own selections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select

from omo.analytics.periods import period, share
from omo.analytics.schemas import CouponCost, DiscountGroup, DiscountReport
from omo.commerce import service as commerce
from omo.coupons import service as coupons
from omo.db import UnitOfWork
from omo.shared.errors import ValidationFailed
from omo.shared.money import from_cents
from omo.tiers import service as tiers

_SUMS = ("orders", "list", "line_discount", "order_discount", "cost", "costed_list")


def group(key: str, sums: dict[str, int], *, target: float | None = None) -> DiscountGroup:
    """One group's figures from its sums in cents; with `target`, the tier's recommended range."""
    listed, give = sums["list"], sums["line_discount"] + sums["order_discount"]
    cost_ratio = sums["cost"] / sums["costed_list"] if sums["costed_list"] else None
    before = after = low = high = None
    if cost_ratio is not None and listed:
        before = round(1 - cost_ratio, 4)
        net = listed - give
        after = round((net - cost_ratio * listed) / net, 4) if net else None
        if target is not None:
            # margin after a discount d: 1 − cost_ratio / (1 − d) ≥ target
            high = round(max(0.0, 1 - cost_ratio / (1 - target)), 4)
            low = min(share(give, listed), high)
    return DiscountGroup(
        key=key, orders=sums["orders"], list_value=from_cents(listed), giveaway=from_cents(give),
        giveaway_ratio=share(give, listed), cost_coverage=share(sums["costed_list"], listed),
        margin_before=before, margin_after=after, recommended_min=low, recommended_max=high,
    )  # fmt: skip


def discount_cost(
    uow: UnitOfWork, *, since: datetime | None, until: datetime | None, target_margin: float
) -> DiscountReport:
    if not 0 <= target_margin < 1:
        raise ValidationFailed("target_margin must be in [0, 1)", field="query.target_margin")
    since, until = period(since, until)
    econ = commerce.order_economics(since=since, until=until).subquery()
    levels = tiers.member_levels().subquery()
    used = coupons.redemptions_on_orders(since=since, until=until).subquery()
    with uow.read() as session:
        base = tiers.programme_in_force(session).levels[0].code
        tier = case(
            (econ.c.member_id.is_(None), literal("guest")),
            else_=func.coalesce(levels.c.level, literal(base)),
        )
        sums = (
            func.count(), func.sum(econ.c.list_cents), func.sum(econ.c.line_discount_cents),
            func.sum(econ.c.order_discount_cents), func.sum(econ.c.cost_cents),
            func.sum(econ.c.costed_list_cents),
        )  # fmt: skip
        joined = econ.outerjoin(levels, levels.c.member_id == econ.c.member_id)

        # one pass, grouped by channel × tier; the rest is adding those few rows up
        cells = session.execute(
            select(econ.c.channel, tier, *sums).select_from(joined).group_by(econ.c.channel, tier)
        ).all()
        overall: dict[str, int] = dict.fromkeys(_SUMS, 0)
        channels: dict[str, dict[str, int]] = {}
        by_tier: dict[str, dict[str, int]] = {}
        for channel, level, *values in cells:
            cell = _sums(values)
            for totals in (
                overall,
                channels.setdefault(str(channel), dict.fromkeys(_SUMS, 0)),
                by_tier.setdefault(str(level), dict.fromkeys(_SUMS, 0)),
            ):
                for name, value in cell.items():
                    totals[name] += value
        per_order = (
            select(
                used.c.template, used.c.order_id,
                func.sum(used.c.discount_cents).label("discount_cents"),
            )
            .group_by(used.c.template, used.c.order_id)
            .subquery()
        )  # fmt: skip
        coupon_rows = session.execute(
            select(
                per_order.c.template, func.count(), func.sum(per_order.c.discount_cents),
                func.sum(econ.c.list_cents),
            )
            .join(econ, econ.c.order_id == per_order.c.order_id)
            .group_by(per_order.c.template)
            .order_by(per_order.c.template)
        ).all()  # fmt: skip
    return DiscountReport(
        period_from=since, period_to=until, target_margin=target_margin,
        overall=group("all", overall),
        channels=[group(k, v) for k, v in sorted(channels.items())],
        tiers=[group(k, v, target=target_margin) for k, v in sorted(by_tier.items())],
        coupons=[_coupon(t, n, d, lv) for t, n, d, lv in coupon_rows],
    )  # fmt: skip


def _coupon(template: Any, orders: Any, discount: Any, listed: Any) -> CouponCost:
    cents, list_cents = int(discount or 0), int(listed or 0)
    return CouponCost(
        template=str(template), orders=int(orders), discount=from_cents(cents),
        list_value=from_cents(list_cents), giveaway_ratio=share(cents, list_cents),
    )  # fmt: skip


def _sums(values: Any) -> dict[str, int]:
    return {name: int(v or 0) for name, v in zip(_SUMS, values, strict=True)}
