"""The KPIs of a period: one read transaction over the areas' own figures (members, commerce,
tiers, coupons, points, identity); each definition is stated on the Kpis schema."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from omo.analytics.periods import period, share
from omo.analytics.rfm import STAGES
from omo.analytics.schemas import Kpis
from omo.commerce import service as commerce
from omo.coupons import service as coupons
from omo.db import UnitOfWork
from omo.identity import service as identity
from omo.members import service as members
from omo.points import service as points
from omo.shared.money import CENT
from omo.tiers import service as tiers

DORMANT_AFTER_DAYS = STAGES[1][1]  # past "lapsing": the lifecycle's dormant and lost stages


def kpis(
    uow: UnitOfWork,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    dormant_after_days: int = DORMANT_AFTER_DAYS,
) -> Kpis:
    """The figures of [since, until) as they stood at `until` (default: the last 30 days)."""
    since, until = period(since, until)
    with uow.read() as session:
        total, new = members.enrolment_counts(session, since=since, until=until)
        sales = commerce.period_sales(
            session, since=since, until=until,
            lapsed_since=until - timedelta(days=dormant_after_days),
        )  # fmt: skip
        moves = tiers.movements(session, since=since, until=until)
        issued = coupons.period_coupons(session, since=since, until=until)
        held, point_value = points.outstanding(session, at=until)
        ids = identity.identity_figures(session, since=since, until=until)
    vip = sum(moves.levels.values())
    return Kpis(
        period_from=since,
        period_to=until,
        members=total,
        new_members=new,
        active_members=sales.buyers,
        active_rate=share(sales.buyers, total),
        vip_members=vip,
        vip_share=share(vip, total),
        levels=moves.levels,
        upgrades=moves.upgrades,
        upgrade_rate=share(moves.upgrades, total),
        downgrades=moves.downgrades,
        downgrade_rate=share(moves.downgrades, total),
        dormant_after_days=dormant_after_days,
        dormant_members=sales.lapsed_buyers,
        dormancy_rate=share(sales.lapsed_buyers, sales.past_buyers),
        identification_rate=ids.identification_rate,
        duplicate_account_rate=ids.duplicate_account_rate,
        online_share=ids.online_spend_share,
        offline_share=ids.offline_spend_share,
        orders=sales.orders,
        net_sales=sales.net_sales,
        aov=(sales.net_sales / sales.orders).quantize(CENT) if sales.orders else Decimal(0),
        buyers=sales.buyers,
        repeat_buyers=sales.repeat_buyers,
        repurchase_rate=share(sales.repeat_buyers, sales.buyers),
        returning_buyers=sales.returning_buyers,
        coupons_issued=issued.issued,
        coupons_used=issued.used,
        coupon_redemption_rate=share(issued.used, issued.issued),
        coupon_redemptions=issued.redemptions,
        coupon_discount=issued.discount,
        points_outstanding=held,
        point_value=point_value,
        points_liability=(point_value * held).quantize(CENT),
    )
