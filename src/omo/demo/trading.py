"""The demo's last days, traded through the real use cases (`omo demo --trade-days N`).

The demo world is imported history, and imported orders earn nothing and spend nothing. So that
the loyalty engine is seen at work, the last days of the world are played at the tills instead:
members come back and buy through the checkout (their level's discount, points earned, now and
then points paid with or a coupon used), some return a line days later through the refund, and
new people join with a member's referral code and make a first order. The clock is moved to each
moment, so every date is the sale's own. Before the first sale the imported year earns its points
(`checkout.backfill`), levels are placed, and a campaign coupon goes to part of the members; at
each day's end points expire, levels are reviewed and referrals lapse, as the daily jobs would.

What happens is drawn up front from the seed, never from what the database holds, and each act
has a key (the order's id, the refund's key, the campaign's key): running it again does nothing
it already did, and an interrupted run picks up where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.checkout import backfill, refunds
from omo.checkout import service as checkout
from omo.checkout.schemas import BasketLineIn, CommitRequest, QuoteRequest
from omo.commerce import service as commerce
from omo.commerce.channels import COUNTED_STATUSES, Channel, Fulfilment
from omo.commerce.models import Order, Product, Store
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork
from omo.demo.people import GIVEN_F, GIVEN_M, SURNAMES
from omo.ingest import service as ingest
from omo.journeys import playbook
from omo.members.models import Member
from omo.members.schemas import IdentifierIn, MemberUpsert
from omo.points import service as points
from omo.referrals import service as referrals
from omo.shared import clock
from omo.shared.errors import DomainError
from omo.shared.money import CENT
from omo.tiers import service as tiers

CAMPAIGN = "ANNIV150"
CAMPAIGN_SHARE = 0.4  # of the members who bought in the year before
USE_COUPON, USE_POINTS, RETURN_LINE = 0.7, 0.25, 0.03  # chances, when there is one to use
REFERRED_SHARE = 0.2  # of the people who join, those who come with a member's code
FIRST_ORDER = 0.7  # of the people who join, those who buy within the week
TILL = Principal(name="demo-till")


@dataclass
class Traded:
    sales: int = 0
    skipped: int = 0  # done by an earlier run
    refused: int = 0  # a rule said no (a coupon's budget, a member merged meanwhile …)
    coupons_used: int = 0
    points_redeemed: int = 0
    refunds: int = 0
    enrolled: int = 0
    referred: int = 0  # of those enrolled, with a member's referral code
    backfilled_points: int = 0
    notes: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"traded {self.sales} sales ({self.coupons_used} with a coupon, "
            f"{self.points_redeemed} points paid with), {self.refunds} returns, "
            f"{self.enrolled} new members ({self.referred} referred); {self.backfilled_points} "
            "points for the year "
            f"before; {self.skipped} done before, {self.refused} refused"
        )


@dataclass(frozen=True)
class _Act:
    at: datetime
    kind: str  # sale | join | refund
    ref: str
    member: int | None = None  # the buyer (a sale), the referrer (a join)
    store: str | None = None
    lines: tuple[tuple[str, int], ...] = ()
    coupon: float = 1.0
    pay_points: float = 1.0
    phone: str = ""
    name: str = ""


@dataclass(frozen=True)
class _Catalogue:
    skus: list[str]
    weights: np.ndarray  # the chance of each to be picked for a basket line


@dataclass(frozen=True)
class _Till:
    currency: str
    region: str
    unit: Decimal  # Settings.price_unit


def trade(
    uow: UnitOfWork, *, start: datetime, end: datetime, seed: int, currency: str, region: str,
    unit: Decimal = CENT,
) -> Traded:  # fmt: skip
    """Play the days from `start` to `end` (both aware) at the tills. See the module's doc."""
    till = _Till(currency, region, unit)
    if not start < end:
        raise ValueError("start must come before end")
    done = Traded()
    with _clock_at(start) as move:
        playbook.seed(uow)
        with uow.read() as session:
            pool, weights = _buyers(session, start)
            joins = _joins_per_day(session, start)
            active = select(Store.code).where(Store.is_active).order_by(Store.id)
            stores = list(session.scalars(active))
            goods = session.execute(
                select(Product.sku, Product.price).where(Product.is_active).order_by(Product.id)
            ).all()
        if not pool or not stores or not goods:
            return done
        done.backfilled_points = backfill.backfill(uow, since=start - timedelta(days=365)).points
        tiers.review(uow)
        _campaign(uow, pool, seed, start, end)
        # the world's own baskets: about 1.8 lines, one of each, cheaper products more often
        # (picked in inverse proportion to their price): about NT$1,200 an order, as imported
        skus = [sku for sku, _price in goods]
        cheap = np.array([1 / float(price) for _sku, price in goods])
        catalogue = _Catalogue(skus, cheap / cheap.sum())
        acts = _plan(np.random.default_rng(seed), pool, weights, stores, catalogue, start, end,
                     joins)  # fmt: skip
        day = start
        for act in acts:
            while act.at >= day + timedelta(days=1):
                day += timedelta(days=1)
                move(day)
                _daily(uow)
            move(act.at)
            _do(uow, act, done, till)
        move(end)
        _daily(uow)
    return done


@contextmanager
def _clock_at(first: datetime) -> Iterator[Callable[[datetime], None]]:
    at = [first]
    clock.set_clock(lambda: at[0])

    def move(to: datetime) -> None:
        at[0] = to

    try:
        yield move
    finally:
        clock.reset_clock()


def _buyers(session: Session, start: datetime) -> tuple[list[int], np.ndarray]:
    """Members who bought in the year before, weighted by how often."""
    rows = session.execute(
        select(Order.member_id, func.count())
        .where(Order.member_id.is_not(None), Order.status.in_(COUNTED_STATUSES),
               Order.ordered_at >= start - timedelta(days=365), Order.ordered_at < start)
        .group_by(Order.member_id)
        .order_by(Order.member_id)
    ).all()  # fmt: skip
    counts = np.array([n for _, n in rows], dtype=float)
    return [m for m, _ in rows if m is not None], counts / counts.sum() if len(rows) else counts


def _joins_per_day(session: Session, start: datetime) -> float:
    """The world's own rate of joining: members who joined in the 90 days before."""
    joined = session.scalar(
        select(func.count()).where(
            Member.joined_at >= start - timedelta(days=90), Member.joined_at < start
        )
    )
    return (joined or 0) / 90


def _campaign(uow: UnitOfWork, pool: list[int], seed: int, start: datetime, end: datetime) -> None:
    with uow.read() as session:
        have = coupons.has_template(session, CAMPAIGN)
    if not have:
        days = (end - start).days + 1
        coupons.put_template(uow, code=CAMPAIGN, actor="demo", template=CouponTemplate(
            name="週年慶 滿1000折150", kind="spend_get_off", spend=Decimal(1000),
            amount=Decimal(150), valid_days=days,
        ))  # fmt: skip
    rng = np.random.default_rng(seed + 1)
    chosen = [m for m in pool if rng.random() < CAMPAIGN_SHARE]
    coupons.issue(uow, template_code=CAMPAIGN, member_ids=chosen, key=f"demo-{seed}")


def _plan(
    rng: np.random.Generator,
    pool: list[int],
    weights: np.ndarray,
    stores: list[str],
    catalogue: _Catalogue,
    start: datetime,
    end: datetime,
    joins_per_day: float,
) -> list[_Act]:
    """Every act of the period, in time order, from the seed alone (and the world's rates)."""
    per_day = len(pool) * 2.5 / 365  # the world's own rate of buying, about
    acts: list[_Act] = []
    days = (end - start).days + 1
    for d in range(days):
        opening = start + timedelta(days=d, hours=2)  # 10:00 in Taipei when start is midnight
        stamp = f"{opening + timedelta(hours=8):%Y%m%d}"  # the Taipei day, as on a receipt
        for n in range(rng.poisson(per_day)):
            at = opening + timedelta(seconds=int(rng.integers(0, 11 * 3600)))
            ref = f"demo-{stamp}-{n:04d}"
            member = pool[int(rng.choice(len(pool), p=weights))]
            acts.append(_sale(rng, at, ref, member, stores, catalogue))
            if rng.random() < RETURN_LINE:
                back = at + timedelta(days=int(rng.integers(1, 8)), hours=1)
                acts.append(_Act(at=back, kind="refund", ref=ref))
        for n in range(rng.poisson(joins_per_day)):
            at = opening + timedelta(seconds=int(rng.integers(0, 11 * 3600)))
            ref = f"demo-{stamp}-join-{n}"
            female = rng.random() < 0.6
            given = GIVEN_F if female else GIVEN_M
            name = SURNAMES[int(rng.integers(len(SURNAMES)))] + given[int(rng.integers(len(given)))]
            phone = f"0979{int(rng.integers(0, 1_000_000)):06d}"
            referred = rng.random() < REFERRED_SHARE
            referrer = pool[int(rng.integers(len(pool)))] if referred else None
            at_store = (
                None if referred or rng.random() < 0.4 else stores[int(rng.integers(len(stores)))]
            )
            acts.append(_Act(at=at, kind="join", ref=ref, member=referrer, store=at_store,
                             phone=phone, name=name))  # fmt: skip
            if rng.random() < FIRST_ORDER:
                first = at + timedelta(days=int(rng.integers(0, 7)), minutes=30)
                acts.append(_sale(rng, first, ref + "-first", None, stores, catalogue, phone=phone))
    return sorted((a for a in acts if a.at < end), key=lambda a: (a.at, a.ref))


def _sale(
    rng: np.random.Generator,
    at: datetime,
    ref: str,
    member: int | None,
    stores: list[str],
    catalogue: _Catalogue,
    phone: str = "",
) -> _Act:
    online = rng.random() < 0.3
    lines = min(4, 1 + int(rng.poisson(0.76)))
    picks = rng.choice(len(catalogue.skus), lines, replace=False, p=catalogue.weights)
    return _Act(
        at=at, kind="sale", ref=ref, member=member, phone=phone,
        store=None if online else stores[int(rng.integers(len(stores)))],
        lines=tuple((catalogue.skus[int(i)], 2 if rng.random() < 0.05 else 1) for i in picks),
        coupon=float(rng.random()), pay_points=float(rng.random()),
    )  # fmt: skip


def _daily(uow: UnitOfWork) -> None:
    points.expire_due(uow)
    tiers.review(uow)
    referrals.lapse_due(uow)


def _do(uow: UnitOfWork, act: _Act, done: Traded, till: _Till) -> None:
    try:
        if act.kind == "join":
            _join(uow, act, done, till.region)
        elif act.kind == "refund":
            _return(uow, act, done, till.unit)
        else:
            _buy(uow, act, done, till)
    except DomainError as exc:
        done.refused += 1
        done.notes[exc.code] = done.notes.get(exc.code, 0) + 1


def _join(uow: UnitOfWork, act: _Act, done: Traded, region: str) -> None:
    """Joined at a store's till, on the web shop, or — with a member's referral code — in
    the app."""
    code = None
    if act.member is not None:
        code = referrals.code_for(uow, member_id=act.member, link="{code}").code
    channel = "app" if code else "pos" if act.store else "web"
    joined = ingest.enrol_member(uow, principal=TILL, region=region, data=MemberUpsert(
        name=act.name, join_channel=channel, join_store=act.store, referral_code=code,
        identifiers=[IdentifierIn(kind="phone", value=act.phone)],
    ))  # fmt: skip
    if not joined.created:
        done.skipped += 1
        return
    done.enrolled += 1
    done.referred += code is not None
    coupons.issue(uow, template_code="FIRST100", member_ids=[joined.member.id], key="demo-welcome")


def _buy(uow: UnitOfWork, act: _Act, done: Traded, till: _Till) -> None:
    channel = Channel.WEB if act.store is None else Channel.POS
    with uow.read() as session:
        if commerce.find_order(session, channel=channel.value, external_id=act.ref) is not None:
            done.skipped += 1
            return
    who: dict[str, object] = (
        {"member_id": act.member} if act.member is not None
        else {"customer": [IdentifierIn(kind="phone", value=act.phone)]}
    )  # fmt: skip
    basket = dict(
        channel=channel, store=act.store, **who,
        lines=[BasketLineIn(sku=sku, quantity=q) for sku, q in act.lines],
    )  # fmt: skip
    quote = checkout.quote(uow, req=QuoteRequest.model_validate(basket), region=till.region,
                           unit=till.unit)  # fmt: skip
    codes: list[str] = []
    cap = quote.points_cap
    if quote.member_id is not None and act.coupon < USE_COUPON:
        codes, cap = _a_coupon_that_applies(uow, basket, quote.member_id, till, cap)
    pay = 0
    if quote.points_balance >= 100 and act.pay_points < USE_POINTS:
        pay = cap  # what is left to pay with points after the coupon
    fulfilment = Fulfilment.DELIVERY if act.store is None else Fulfilment.IN_STORE
    result = checkout.commit(
        uow, principal=TILL, currency=till.currency, region=till.region, unit=till.unit,
        req=CommitRequest.model_validate(
            basket | {"coupon_codes": codes, "points": pay, "external_id": act.ref,
                      "fulfilment": fulfilment}
        ),
    )  # fmt: skip
    if result.replayed:
        done.skipped += 1
        return
    done.sales += 1
    done.coupons_used += len(codes)
    done.points_redeemed += pay


def _a_coupon_that_applies(
    uow: UnitOfWork, basket: dict[str, object], member_id: int, till: _Till, cap: int
) -> tuple[list[str], int]:
    """The first of the member's coupons that applies to the basket, and the points the basket
    can then take; none, and `cap`, when none applies."""
    for held in coupons.member_coupons(uow, member_id=member_id):
        if held.state != "usable":
            continue
        tried = checkout.quote(
            uow, req=QuoteRequest.model_validate(basket | {"coupon_codes": [held.code]}),
            region=till.region, unit=till.unit,
        )  # fmt: skip
        if tried.coupons and tried.coupons[0].applied:
            return [held.code], tried.points_cap
    return [], cap


def _return(uow: UnitOfWork, act: _Act, done: Traded, unit: Decimal) -> None:
    with uow.read() as session:
        order = commerce.find_order(session, channel=Channel.POS.value, external_id=act.ref)
        if order is None:
            order = commerce.find_order(session, channel=Channel.WEB.value, external_id=act.ref)
        if order is None:
            return
        order_id = order.id
    got = refunds.refund(
        uow, order_id=order_id, actor="demo-till", unit=unit,
        req=refunds.RefundRequest(
            idempotency_key=f"demo-return-{act.ref}", reason="不合用",
            lines=[refunds.RefundLine(line_no=1, quantity=1)],
        ),
    )  # fmt: skip
    if got.replayed:
        done.skipped += 1
    else:
        done.refunds += 1
