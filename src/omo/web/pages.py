"""What each page shows, gathered from the areas' use cases (the views only render it)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from omo.analytics import service as analytics
from omo.analytics.kpis import kpis as period_kpis
from omo.analytics.schemas import Kpis, ScoreRead
from omo.apikeys.service import Principal
from omo.checkout import dayclose
from omo.checkout.dayclose import Reconciliation, StoreDay, StoresDay, refund_clearing
from omo.checkout.dayclose.clearing import Clearing, clearing
from omo.checkout.dayclose.refund_clearing import RefundsClearing
from omo.commerce import returns_policy
from omo.commerce import service as commerce
from omo.commerce.returns_policy import PolicyRead
from omo.coupons import service as coupons
from omo.coupons.schemas import CouponRead, TemplateRead
from omo.customer_view import service as customer_view
from omo.customer_view.schemas import CustomerView
from omo.db import UnitOfWork
from omo.members import service as members
from omo.messaging.retention import Kept
from omo.points import movements
from omo.points import service as points
from omo.points.movements import MovementRow
from omo.points.schemas import PointsSummary, ProgrammeRead
from omo.referrals import kpis as referral_kpis
from omo.referrals import service as referrals
from omo.referrals.kpis import ReferralSummary
from omo.referrals.service import ReferralRead
from omo.rewards import fulfilment, settlement
from omo.rewards import service as rewards
from omo.rewards.schemas import RedemptionRow, RewardRead, SettlementRow
from omo.settings import Settings as AppSettings
from omo.shared import clock
from omo.shared.errors import DomainError, NotFound, ValidationFailed
from omo.tasks import service as tasks
from omo.tasks.schemas import TaskRead
from omo.tiers import service as tiers
from omo.tiers.schemas import MemberTierRead, TierProgrammeRead
from omo.users.service import SignedIn
from omo.webhooks import service as webhooks
from omo.webhooks.schemas import WebhookRead


@dataclass
class TrendPoint:
    month: str  # YYYY-MM, the brand's local month
    new_members: int
    active_members: int  # members who bought in the month
    orders: int
    net_sales: Decimal


@dataclass
class Dashboard:
    kpis: Kpis
    segments: list[tuple[str, int]]
    trend: list[TrendPoint]
    referrals: ReferralSummary  # the same 30 days
    stores: StoresDay  # yesterday, store by store (日結)
    points_month: MovementRow  # the points ledger this month so far


def dashboard(uow: UnitOfWork, *, zone: str, months: int = 12) -> Dashboard:
    """The last 30 days' headline figures (with what referrals brought), the last months'
    trend, the segments of the last refresh."""
    figures = period_kpis(uow)
    segments = [(s.name, s.members) for s in analytics.list_segments(uow) if s.kind == "builtin"]
    today = dayclose.today(zone)
    yesterday = dayclose.stores_day(uow, day=today - timedelta(days=1), time_zone=zone,
                                    principal=Principal(name="ui:dashboard"))  # fmt: skip
    month = movements.movements(uow, start=today.replace(day=1), end=today + timedelta(days=1),
                                by="month", time_zone=zone)  # fmt: skip
    return Dashboard(
        kpis=figures, segments=segments, trend=trend(uow, zone=zone, months=months),
        referrals=referral_kpis.summary(uow, since=figures.period_from, until=figures.period_to),
        stores=yesterday, points_month=month.total,
    )  # fmt: skip


@dataclass
class PointsLedgerPage:
    start: date
    end: date
    by: str
    movements: movements.Movements | None
    clearing: Clearing | None = None  # the same range, store by store
    refunds: RefundsClearing | None = None  # refunds paid at a store for another's sales
    error: DomainError | None = None


def points_ledger(
    uow: UnitOfWork, *, zone: str, start: str | None, end: str | None, by: str | None,
    roll: bool = True, clear: bool = True, refunds: bool = True,
) -> PointsLedgerPage:  # fmt: skip
    """The points ledger rolled forward (`roll`), points cleared between stores (`clear`) and
    refunds paid at another store (`refunds`) for the page or its CSVs (default: the last 12
    months, by month); a bad range comes back as the page's error."""
    today = dayclose.today(zone)
    first = date(today.year - (today.month < 12), today.month % 12 + 1, 1)  # 11 months back
    page = PointsLedgerPage(start=first, end=today + timedelta(days=1), by=by or "month",
                            movements=None)  # fmt: skip
    try:
        page.start = dayclose.parse_day(start, zone) if start else page.start
        page.end = dayclose.parse_day(end, zone) if end else page.end
        if page.by not in ("day", "month"):
            raise ValidationFailed("by: day or month", field="by")
        if roll:
            page.movements = movements.movements(uow, start=page.start, end=page.end,
                                                 by=page.by, time_zone=zone)  # type: ignore[arg-type]  # fmt: skip
        if clear:
            page.clearing = clearing(uow, start=page.start, end=page.end, time_zone=zone,
                                     principal=Principal(name="ui:points"))  # fmt: skip
        if refunds:
            page.refunds = refund_clearing.refunds_clearing(
                uow, start=page.start, end=page.end, time_zone=zone,
                principal=Principal(name="ui:points"),
            )  # fmt: skip
    except DomainError as exc:
        page.error = exc
    return page


def trend(uow: UnitOfWork, *, zone: str, months: int) -> list[TrendPoint]:
    """New and active members, orders and net sales per local month, the current month last
    (so far)."""
    tz = ZoneInfo(zone)
    now = clock.now().astimezone(tz)
    starts = [date(now.year, now.month, 1)]
    for _ in range(months - 1):
        first = starts[0]
        starts.insert(0, date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1))
    bounds = [datetime.combine(d, time(0), tzinfo=tz) for d in starts] + [
        now + timedelta(seconds=1)
    ]
    points = []
    with uow.read() as session:
        for d, since, until in zip(starts, bounds, bounds[1:], strict=False):
            _, new = members.enrolment_counts(session, since=since, until=until)
            orders, net, buyers = commerce.orders_and_sales(session, since=since, until=until)
            points.append(TrendPoint(d.strftime("%Y-%m"), new, buyers, orders, net))
    return points


@dataclass
class MemberPage:
    view: CustomerView
    tier: MemberTierRead
    points: PointsSummary
    coupons: list[CouponRead]
    scores: ScoreRead | None
    templates: list[str]
    issue_id: str
    tags: list[str] = field(default_factory=list)
    # the member on either side of a referral: who brought them, whom they brought
    referrals: list[ReferralRead] = field(default_factory=list)
    levels: list[tuple[str, str]] = field(default_factory=list)  # (code, name), to give one
    adjust_id: str = ""  # made when shown: a double press adjusts once


def member_page(uow: UnitOfWork, *, member_id: int) -> MemberPage:
    view = customer_view.customer_view(uow, member_id=member_id, timeline_limit=30)
    mid = view.member.id
    try:
        scores: ScoreRead | None = analytics.member_scores(uow, member_id=mid)
    except NotFound:
        scores = None  # no refresh has run yet
    return MemberPage(
        view=view, tier=tiers.member_tier(uow, member_id=mid),
        points=points.summary(uow, member_id=mid, history=20),
        coupons=coupons.member_coupons(uow, member_id=mid), scores=scores,
        templates=[t.code for t in coupons.list_templates(uow) if not t.template.shared_code],
        issue_id=secrets.token_hex(8),
        tags=sorted(set(scores.tags if scores else [])),
        referrals=referrals.list_referrals(uow, status=None, member_id=mid, limit=20,
                                           before=None),
        levels=[(lv.code, lv.name) for lv in tiers.get_programme(uow).programme.levels],
        adjust_id=secrets.token_hex(8),
    )  # fmt: skip


def issue_coupon(uow: UnitOfWork, *, member_id: int, template: str, key: str) -> str | None:
    """Issue one coupon; None when it was issued, else why not."""
    try:
        result = coupons.issue(uow, template_code=template, member_ids=[member_id], key=key)
    except DomainError as exc:
        return str(exc)
    return None if result.issued else result.refused.get(member_id, "refused")


def store_tasks(uow: UnitOfWork, *, store_id: int) -> list[TaskRead]:
    return tasks.open_tasks(uow, store_id=store_id)


@dataclass
class StoreDayPage:
    day: date | None
    report: StoreDay | None
    reconciliation: Reconciliation | None = None
    journal: str = ""  # the journal pasted, shown again with its error
    error: DomainError | None = None


def store_day(
    uow: UnitOfWork, *, user: SignedIn, store_id: int, day: str | None, time_zone: str,
    journal: str | None = None, close: bool = False, reopen: str | None = None,
) -> StoreDayPage:  # fmt: skip
    """The store's day (日結) for the page; with `journal`, the till's receipts matched too;
    `close`: the day closed first (日結確認); `reopen`: reopened first with that reason
    (取消日結). A bad day, journal or reason, a day not over or not closed, comes back as the
    page's error, with what could be shown."""
    code = next((s.code for s in commerce.get_stores(uow) if s.id == store_id), None)
    if code is None:
        raise NotFound(f"no store {store_id}", field="store_id")
    who = Principal(name=f"ui:{user.username}", store_id=user.store_id)
    page = StoreDayPage(day=None, report=None, journal=journal or "")
    try:
        page.day = dayclose.parse_day(day, time_zone)
        if close:
            try:
                dayclose.close_day(uow, store=code, day=page.day, time_zone=time_zone,
                                   principal=who)  # fmt: skip
            except DomainError as exc:  # not over yet: said beside the day's figures
                page.error = exc
        if reopen is not None:
            try:
                reason = dayclose.ReopenIn(reason=reopen.strip()).reason
                dayclose.reopen_day(uow, store=code, day=page.day, time_zone=time_zone,
                                    principal=who, reason=reason)  # fmt: skip
            except ValidationError:
                page.error = ValidationFailed("say why the day is reopened (up to 200 "
                                              "characters)", field="reason")  # fmt: skip
            except DomainError as exc:  # not closed: said beside the day's figures
                page.error = exc
        page.report = dayclose.store_day(
            uow, store=code, day=page.day, time_zone=time_zone, principal=who
        )
        if journal is not None:
            page.reconciliation = dayclose.reconcile(
                uow, store=code, day=page.day, time_zone=time_zone, principal=who,
                journal=dayclose.parse_journal(journal),
            )  # fmt: skip
    except DomainError as exc:
        page.error = exc
    return page


def store_pickups(uow: UnitOfWork, *, store_id: int) -> list[RedemptionRow]:
    """Rewards redeemed for collection at this store and not yet handed over, oldest first
    (the till hands them over when the member comes)."""
    code = next((s.code for s in commerce.get_stores(uow) if s.id == store_id), None)
    if code is None:
        return []
    return fulfilment.owed(uow, store=code, reward=None, limit=200, vouchers=False)


def may_open_store(user: SignedIn, store_id: int) -> bool:
    """Store staff see their own store only."""
    return user.store_id is None or user.store_id == store_id


@dataclass
class Settings:
    tiers: TierProgrammeRead
    points: ProgrammeRead
    coupons: list[TemplateRead]
    rewards: list[RewardRead]
    to_send: list[RedemptionRow]  # redeemed with no store named: sent by post or courier
    partners: list[SettlementRow]  # the last 30 days' partner rewards: what is owed to whom
    returns: PolicyRead  # which refunds need a manager
    price_unit: Decimal  # what the tills take (OMO_PRICE_UNIT): discounts and refunds round to it
    webhooks: list[WebhookRead]  # where each subscription's delivery stands
    outbox: Kept  # the facts the webhooks and pollers read: the oldest kept, the last removal
    retention_days: int  # OMO_OUTBOX_RETENTION_DAYS (0: every fact kept)


TO_SEND_SHOWN = 100


def settings(uow: UnitOfWork, *, app: AppSettings) -> Settings:
    """The settings page: the programmes, rewards owed, partners, the returns policy, the
    webhooks and the outbox they read (`app`: the process's settings — the till's price unit,
    the outbox's retention)."""
    return Settings(
        tiers=tiers.get_programme(uow), points=points.get_programme(uow),
        coupons=coupons.list_templates(uow), rewards=rewards.list_rewards(uow, available=False),
        to_send=fulfilment.owed(uow, store=None, reward=None, limit=TO_SEND_SHOWN,
                                vouchers=False, to_send=True),
        partners=settlement.partner_settlement(uow, since=None, until=None, partner=None),
        returns=returns_policy.get_policy(uow), price_unit=app.price_unit,
        webhooks=webhooks.list_webhooks(uow), outbox=webhooks.outbox_kept(uow),
        retention_days=app.outbox_retention_days,
    )  # fmt: skip


def editor_values(page: Settings) -> dict[str, str]:
    """The programmes as JSON for the settings editor, and a coupon template to start from."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, indent=2)

    example = {"name": "滿1000折150", "kind": "spend_get_off", "spend": "1000", "amount": "150",
               "valid_days": 30}  # fmt: skip
    reward = {"name": "帆布購物袋", "kind": "gift", "points": 300, "stock": 100, "per_member": 1}
    return {
        "tiers": dump(page.tiers.programme.model_dump(mode="json")),
        "points": dump(page.points.rules.model_dump(mode="json")),
        "returns": dump(page.returns.policy.model_dump(mode="json")),
        "coupon": dump(example),
        "reward": dump(reward),
    }
