"""Refunds, whole or by lines (CHK-3): money back on the order, what the units returned earned
taken back (weighed by the rules the sale earned under: double-points goods take back double),
the points it was paid with given back in proportion, on a whole refund
its coupons restored (if their template says so; under the policy's `with_their_goods`, each
coupon as soon as the goods it came off are all back) and the tier's free shipment it used given
back, a referral whose qualifying order no longer qualifies undone, and the member's stats
rebuilt — one transaction, idempotent on the refund's key. Tiers see the lower spend at their
next review; an upgrade the returned goods had earned is taken back at once (tiers/returned.py).
A returns policy may hold a refund for a manager, claw back a coupon whose threshold the goods
kept miss, or charge earned points the member has spent."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.checkout import paid
from omo.commerce import returns_policy
from omo.commerce import service as commerce
from omo.commerce.models import Order, OrderLine, OrderRefund
from omo.commerce.schemas import CODE, OrderResult
from omo.commerce.stats import money_sum
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork
from omo.journeys import returned as journeys_returned
from omo.members import service as members
from omo.messaging import outbox
from omo.points import service as points
from omo.points.rules import redeem_value
from omo.referrals import service as referrals
from omo.shared import clock
from omo.shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from omo.shared.money import CENT, floor_to_unit, to_unit
from omo.shared.schemas import MoneyOut, ReadModel, StrictModel
from omo.tiers import returned, shipping


class RefundLine(StrictModel):
    line_no: int = Field(ge=1)
    quantity: int = Field(ge=1, le=100_000)


class RefundLines(StrictModel):
    # an empty list was taken as "none" and refunded the whole order: a till whose staff chose
    # nothing gave everything back
    lines: list[RefundLine] | None = Field(
        default=None, min_length=1,
        description="left out (or null): the whole order; an empty list is refused",
    )  # fmt: skip


class RefundRequest(RefundLines):
    idempotency_key: str = Field(min_length=1, max_length=120, pattern=r"^[\x21-\x7e]+$")
    reason: str | None = Field(default=None, max_length=300)
    store: str | None = Field(
        default=None, pattern=CODE,
        description="the store whose till gives the refund (跨店退貨: another than the sale's); "
        "none: the API key's store, or for a key of no store the sale's",
    )  # fmt: skip


class RefundQuote(ReadModel):
    """What a refund of these lines would do now, before anyone presses: the refund itself, run
    and rolled back, so every figure is the one pressing would give."""

    amount: MoneyOut
    whole: bool = Field(description="every unit would be back: the order refunded in full")
    coupon_clawed_back: MoneyOut
    coupons_clawed_back: list[str]
    points_taken_back: int
    points_given_back: int
    points_short: int
    points_charged: MoneyOut
    coupons_restored: int = Field(description="coupons the customer may use again")
    tier_lowered_to: str | None
    tier_gifts_withdrawn: int
    journey_coupons_withdrawn: int
    journey_coupons_charged: MoneyOut
    journey_points_taken_back: int
    journey_points_short: int
    needs_approval: str | None = Field(description="why the returns policy holds it back")


class _Weighed(Exception):
    """Carries a quote out of the transaction it rolls back."""

    def __init__(self, quote: RefundQuote) -> None:
        super().__init__("weighed")
        self.quote = quote


class RefundResult(ReadModel):
    order: OrderResult
    amount: MoneyOut
    store: str | None = Field(
        default=None, description="the store whose till gave it (none: an order of no store "
        "refunded away from any till)",
    )  # fmt: skip
    points_taken_back: int
    points_given_back: int
    points_short: int = Field(
        description="points the order earned that the member has spent and holds none of to "
        "give back: written off. Their value (points_short_value) is what a store may keep "
        "back from the money, if its policy says so"
    )
    points_short_value: MoneyOut
    points_charged: MoneyOut = Field(
        default=Decimal(0),
        description="kept back from the money for the points in points_short (the returns "
        "policy's spent_points: charge), at most the refund; `amount` is after it",
    )
    coupons_restored: int
    free_shipping_restored: bool = Field(
        description="a whole refund gives back the tier's shipment"
    )
    referral_revoked: bool = Field(
        default=False,
        description="the order was a referral's qualifying order, and what is kept of it no "
        "longer qualifies: both sides' bonuses were taken back",
    )
    coupon_clawed_back: MoneyOut = Field(
        default=Decimal(0),
        description="kept back from the money because what the customer keeps no longer "
        "reaches the threshold of the coupons named in coupons_clawed_back (the returns "
        "policy's coupon_threshold: claw_back)",
    )
    coupons_clawed_back: list[str] = Field(default_factory=list)
    tier_lowered_to: str | None = Field(
        default=None,
        description="the level the member fell back to: an upgrade the returned goods had "
        "earned, which the member no longer qualifies for, is taken back at once",
    )
    tier_gifts_withdrawn: int = Field(
        default=0,
        description="monthly gift coupons of the level taken back, issued since the upgrade "
        "and not used: voided with it",
    )
    journey_coupons_withdrawn: int = Field(
        default=0,
        description="coupons journeys gave, not yet used, voided because the return took "
        "their reason away: a 滿額贈券 journey's (an order_spend trigger) for this order, when "
        "what is kept no longer reaches its spend, and a tier_changed journey's for an upgrade "
        "the return took back (tier_lowered_to)",
    )
    journey_coupons_charged: MoneyOut = Field(
        default=Decimal(0),
        description="kept back from the money: what such coupons the customer had already "
        "used took off (the returns policy's journey_coupons_used: charge), at most the "
        "refund; `amount` is after it",
    )
    journey_points_taken_back: int = Field(
        default=0,
        description="points such journeys awarded (an award_points step), taken back with "
        "their reason, from what the member holds",
    )
    journey_points_short: int = Field(
        default=0,
        description="of those, points the member had already spent: written off",
    )
    replayed: bool


def refund(
    uow: UnitOfWork, *, order_id: int, req: RefundRequest, actor: str | None,
    approved_by: str | None = None, unit: Decimal = CENT, till: Principal | None = None,
) -> RefundResult:  # fmt: skip
    """`approved_by`: the manager (or key) that may let a refund past the returns policy; a
    refund the policy holds back without one is refused with `needs_approval`. `unit`: the
    smallest amount the tills take (Settings.price_unit); a partial refund is a whole number of
    it, a whole one all that is left. `till`: who gives it — a key or user bound to a store
    gives refunds at that store only, whichever store sold the goods."""
    return uow.run(
        lambda session: _refund_in(
            session,
            order_id=order_id,
            req=req,
            actor=actor,
            approved_by=approved_by,
            unit=unit,
            till=till,
        )
    )


def _given_at(
    session: Session, req: RefundRequest, order: Order, till: Principal | None
) -> int | None:  # fmt: skip
    """The store whose till gives the refund: the one named, else the till's own, else the
    sale's."""
    if req.store is None:
        return till.store_id if till is not None and till.store_id else order.store_id
    store = commerce.store_by_code(session, req.store, field="store").id
    if till is not None:
        till.check_store(store, field="store")
    return store


def _refund_in(
    session: Session, *, order_id: int, req: RefundRequest, actor: str | None,
    approved_by: str | None, unit: Decimal, till: Principal | None = None,
) -> RefundResult:  # fmt: skip
    now = clock.now()
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}", field="order_id", ctx={"order_id": order_id})
    given_at = _given_at(session, req, order, till)
    if order.member_id is not None:
        members.hold_members(session, [order.member_id])
    # two tills refunding one order at once take turns (guest orders have no member lock)
    order = commerce.lock_order(session, order_id)
    key = f"refund:{req.idempotency_key}"
    held = session.scalar(select(OrderRefund).where(OrderRefund.idempotency_key == key))
    if held is not None:
        named = req.store is not None or (till is not None and till.store_id is not None)
        return _replayed(session, held, order, req, given_at if named else None)
    w = _weigh(session, order, req, now, unit)
    amount, held_back = w.amount, w.held
    if held_back is not None and approved_by is None:
        raise Forbidden(held_back.message, code="needs_approval", ctx=held_back.ctx)
    was = (
        returned.standing_before(session, member_id=order.member_id, now=now)
        if order.member_id is not None
        else None
    )
    made = OrderRefund(
        order_id=order.id, idempotency_key=key, amount=amount,
        lines=[li.model_dump() for li in req.lines or []], reason=req.reason, actor=actor,
        approved_by=approved_by if held_back is not None else None, created_at=now,
        store_id=given_at,
    )  # fmt: skip
    session.add(made)
    order.refunded_total += amount
    if w.whole:
        order.status = "refunded"
    session.flush()
    # the refund that completes the order takes back all that is left, so that rounding
    # of earlier partial refunds never strands a point
    whole_now = order.status == "refunded" or not order.total
    # points follow the units returned, whatever the policy keeps back of the money
    share = Decimal(1) if whole_now else min(w.units_paid / order.total, Decimal(1))
    # the points paid with come back first, so that what the sale earned and the member
    # spent since comes off them rather than being written off: those the units returned
    # were paid with (none for a gift card points did not pay for)
    spent = share if whole_now or w.points_share is None else w.points_share
    given = points.give_back_spent(
        session, order_id=order.id, share=spent, key=f"{key}:spent", now=now, actor=actor
    )
    # under the policy's spend_bonus: threshold, a 滿額贈點 bonus goes back whole, with the
    # return after which what is kept no longer reaches its spend, and not before
    by_threshold = None
    if req.lines and not whole_now and w.policy.spend_bonus == "threshold":
        by_threshold = _earned_back_by_threshold(session, order, req.lines, w)
    # otherwise what the units returned earned, not their money's share: double-points goods
    # returned take back what they earned
    earned = (share if whole_now or not req.lines or by_threshold is not None
              else _earned_share(session, order, req.lines, w))  # fmt: skip
    taken = points.reverse_for_order(
        session, order_id=order.id, share=share if earned is None else earned,
        key=f"{key}:earn", now=now, actor=actor, written_off=_written_off(session, order.id),
        points=by_threshold,
    )  # fmt: skip
    made.points_short_value = redeem_value(points.rules_in_force(session), taken.short)
    if w.policy.spent_points == "charge" and made.points_short_value:
        # the member keeps what those points bought: their value stays with the store (in
        # whole units of the till's: a part of one is not charged)
        made.points_charged = floor_to_unit(min(made.points_short_value, amount), unit)
        made.amount -= made.points_charged
        order.refunded_total -= made.points_charged
    # what journeys gave for the spend this return takes away (and what is kept back for
    # those used), before the referral, the stats and the level weigh what is kept
    spend = journeys_returned.Withdrawn()
    if order.member_id is not None:
        spend = journeys_returned.withdraw_for_order(
            session, order_id=order.id, member_id=order.member_id,
            kept=commerce.kept_of(order.total, order.refunded_total, order.status), now=now,
        )  # fmt: skip
        _keep_back_for_used(made, order, spend, w.policy, unit)
    revoked = referrals.on_refund(
        session, order_id=order.id, kept=order.total - order.refunded_total, key=key,
        now=now, actor=actor,
    )  # fmt: skip
    restored, shipment = 0, False
    if order.status == "refunded":
        restored = coupons.reverse_for_order(session, order_id=order.id, now=now)
        shipment = shipping.give_back(session, order_id=order.id, now=now)
    elif req.lines and w.policy.coupons_back == "with_their_goods":
        restored = _coupons_back_with_their_goods(session, order, now)
    lowered = None
    if order.member_id is not None:
        commerce.recompute_stats(session, member_id=order.member_id, now=now)
    if order.member_id is not None and was is not None:
        lowered = returned.on_return(
            session, member_id=order.member_id, ordered_at=clock.as_utc(order.ordered_at),
            was=was, now=now,
        )  # fmt: skip
    level = journeys_returned.Withdrawn()
    if order.member_id is not None and lowered is not None:  # what journeys gave the level
        level = journeys_returned.withdraw_for_upgrades(
            session, member_id=order.member_id, upgrades=lowered.upgrades, now=now
        )
        if _keep_back_for_used(made, order, level, w.policy, unit):
            # the money kept back counts as spent again; the level, taken back with the
            # goods, is not weighed again
            commerce.recompute_stats(session, member_id=order.member_id, now=now)
    made.journey_coupons_withdrawn = spend.voided + level.voided
    made.journey_points_taken_back = spend.points + level.points
    made.journey_points_short = spend.points_short + level.points_short
    outbox.publish(
        session, topic="OrderRefunded", key=key, now=now,
        payload={"order_id": order.id, "external_id": order.external_id,
                 "member_id": order.member_id, "amount": str(made.amount),
                 "whole": order.status == "refunded", "store_id": given_at},
    )  # fmt: skip
    made.points_taken_back, made.points_short = taken.points, taken.short
    made.points_given_back, made.coupons_restored = given, restored
    made.free_shipping_restored, made.referral_revoked = shipment, revoked is not None
    if lowered is not None:
        made.tier_lowered_to, made.tier_gifts_withdrawn = lowered.level, lowered.gifts_withdrawn
    made.coupon_clawed_back, made.coupons_clawed_back = w.clawed.amount, list(w.clawed.names)
    return _result(session, made, order, replayed=False)


def _keep_back_for_used(
    made: OrderRefund, order: Order, withdrawn: journeys_returned.Withdrawn,
    policy: returns_policy.Policy, unit: Decimal,
) -> Decimal:  # fmt: skip
    """Under the policy's journey_coupons_used: charge, what the withdrawn journeys' coupons
    already used took off stays with the store (whole units of the till's), at most what is
    left of this refund, as spent points do. Returns it."""
    if policy.journey_coupons_used != "charge" or not withdrawn.used_value:
        return Decimal(0)
    charge = floor_to_unit(min(withdrawn.used_value, made.amount), unit)
    made.journey_coupons_charged = (made.journey_coupons_charged or Decimal(0)) + charge
    made.amount -= charge
    order.refunded_total -= charge
    return charge


def quote(uow: UnitOfWork, *, order_id: int, req: RefundLines, unit: Decimal = CENT) -> RefundQuote:
    """A refund weighed and not made: the refund use case run in a transaction that is then
    rolled back, so the quote says what pressing would do now (the money, what the policy keeps
    back, the points, the level) and changes nothing. It holds the member and the order as a
    refund does, as briefly."""

    def run(session: Session) -> RefundQuote:
        order = session.get(Order, order_id)
        if order is None:
            raise NotFound(f"no order {order_id}", field="order_id", ctx={"order_id": order_id})
        held = _weigh(session, order, req, clock.now(), unit).held
        weighed = RefundRequest(idempotency_key=f"quote-{secrets.token_hex(8)}", lines=req.lines)
        done = _refund_in(session, order_id=order_id, req=weighed, actor=None,
                          approved_by="quote", unit=unit)  # fmt: skip
        same = set(RefundQuote.model_fields) - {"whole", "needs_approval"}
        raise _Weighed(RefundQuote(
            **{name: getattr(done, name) for name in same},
            whole=done.order.status == "refunded",
            needs_approval=held.message if held is not None else None,
        ))  # fmt: skip

    try:  # run as a refund is (retried if a concurrent writer wins), then rolled back
        uow.run(run)
    except _Weighed as w:
        return w.quote
    raise AssertionError("unreachable: a quote always rolls back")


@dataclass(frozen=True)
class Weighed:
    amount: Decimal  # the money back
    whole: bool  # every unit would be back
    clawed: ClawedBack  # what the coupon policy keeps back
    units_paid: Decimal  # what the units returned were paid
    worth: Mapping[int, Decimal] = field(default_factory=dict)  # each line's paid (by lines)
    held: returns_policy.Held | None = None  # why a manager must approve
    policy: returns_policy.Policy = field(default_factory=returns_policy.Policy)
    points_share: Decimal | None = None  # of the points paid with, what the units returned were


def _weigh(
    session: Session, order: Order, req: RefundLines, now: datetime, unit: Decimal
) -> Weighed:
    """What these lines give back, under the returns policy in force."""
    if order.status == "cancelled":
        raise ValidationFailed("a cancelled order has nothing to refund", field="order_id")
    # refunded in full when every unit is back, not when the money is: a free item kept
    # after the paid goods came back keeps the order open (and its coupon used)
    if order.status == "refunded":
        raise ValidationFailed("this order is already refunded in full", field="order_id")
    charged = kept_back(session, order.id)
    left = max(order.total - order.refunded_total - charged, Decimal(0))
    policy = returns_policy.in_force(session)
    w = _amount(session, order, req, left, policy, unit)
    held = returns_policy.needs_approval(
        policy, amount=w.amount, now=now, ordered_at=clock.as_utc(order.ordered_at)
    )
    return replace(w, held=held, policy=policy)


def _written_off(session: Session, order_id: int) -> int:
    """The earned points the order's refunds so far found spent and wrote off."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(OrderRefund.points_short), 0)).where(
                OrderRefund.order_id == order_id
            )
        )
        or 0
    )


def kept_back(session: Session, order_id: int) -> Decimal:
    """What the order's refunds kept back (spent points, coupons given for it and used): the
    store keeps it, so it is not left to give back, though the order's refunded_total does not
    count it."""
    points, coupons_used = session.execute(
        select(money_sum(OrderRefund.points_charged),
               money_sum(OrderRefund.journey_coupons_charged))
        .where(OrderRefund.order_id == order_id)
    ).one()  # fmt: skip
    return Decimal(points or 0) + Decimal(coupons_used or 0)


def _earned_share(
    session: Session, order: Order, back: list[RefundLine], w: Weighed
) -> Decimal | None:
    """Lines weigh what they were paid (each coupon off its own lines, as the weighing found),
    as a checkout's sale earned on them."""
    lines = commerce.order_lines(session, order.id)
    units = _units([li.model_dump() for li in back])
    return points.share_earned_by(
        session, order_id=order.id, channel=order.channel,
        ordered_at=clock.as_utc(order.ordered_at),
        lines=[(li.category, w.worth[li.line_no]) for li in lines],
        back=[Decimal(units.get(li.line_no, 0)) / li.quantity for li in lines],
    )  # fmt: skip


def _earned_back_by_threshold(
    session: Session, order: Order, back: list[RefundLine], w: Weighed
) -> int | None:
    """The points these lines take back when a spend bonus goes with its threshold: what
    they weigh of the rest, as _earned_share weighs it, and the bonuses that what was kept
    before reached and what is kept now does not (points.earned_back_by_threshold)."""
    lines = commerce.order_lines(session, order.id)
    units = _units([li.model_dump() for li in back])
    returned = _returned_units(session, order.id)  # this refund's units too
    return points.earned_back_by_threshold(
        session, order_id=order.id, channel=order.channel,
        store=commerce.store_code(session, order.store_id),
        ordered_at=clock.as_utc(order.ordered_at),
        lines=[(li.category, w.worth[li.line_no]) for li in lines],
        back=[Decimal(units.get(li.line_no, 0)) / li.quantity for li in lines],
        before=[Decimal(returned[li.line_no] - units.get(li.line_no, 0)) / li.quantity
                for li in lines],
    )  # fmt: skip


def _replayed(
    session: Session, held: OrderRefund, order: Order, req: RefundRequest, given_at: int | None
) -> RefundResult:  # given_at: the store the retry names (its own or its till's), if any
    """A retry of a refund made: answered as it was, if it asks for the same lines at the same
    store. Other lines under the same key are refused — the till would hand out money for a
    return that was not recorded — and so is another store (its day would miss the money)."""
    if held.order_id != order.id:
        raise Conflict("this refund key was used for another order", field="idempotency_key")
    if given_at is not None and given_at != held.store_id:
        raise Conflict(
            "this refund key was used for a refund at another store", field="idempotency_key"
        )
    if _units(held.lines) != _units([li.model_dump() for li in req.lines or []]):
        raise Conflict(
            "this refund key was used for a refund of other lines", field="idempotency_key"
        )
    return _result(session, held, order, replayed=True)


def _returned_units(session: Session, order_id: int) -> dict[int, int]:
    """Units returned so far per line number, by every refund of the order (this one too)."""
    by_order = commerce.returned_units(session, order_ids=[order_id])
    return defaultdict(int, by_order.get(order_id, {}))


def _coupons_back_with_their_goods(session: Session, order: Order, now: datetime) -> int:
    """The policy's `with_their_goods`: each coupon whose every unit it came off is now back
    (a free item returned, every unit of a category coupon's lines) can be used again, as on a
    whole refund (if its template says so). The customer got back what those units were paid,
    after the coupon: its value comes back as the coupon. A free-shipping coupon waits for the
    whole order. Returns how many."""
    stored = commerce.order_lines(session, order.id)
    lines, quantity = _paid_lines(stored), {li.line_no: li.quantity for li in stored}
    returned = _returned_units(session, order.id)
    back = 0
    for key, t in coupons.open_on_order(session, order_id=order.id):
        if t.kind == "free_shipping":  # it came off the shipping, which the order keeps
            continue
        its = paid.lines_of(_use(t, Decimal(0)), lines)
        if its and all(returned.get(n, 0) >= quantity[n] for n in its):
            coupons.reverse_in(session, key=key, now=now)
            back += 1
    return back


def _units(lines: list[dict[str, int]]) -> dict[int, int]:
    """Units per line number; none for a whole refund."""
    units: dict[int, int] = defaultdict(int)
    for li in lines:
        units[li["line_no"]] += li["quantity"]
    return dict(units)


def _result(session: Session, made: OrderRefund, order: Order, *, replayed: bool) -> RefundResult:
    return RefundResult(
        order=commerce.order_result(session, order, replayed=replayed), amount=made.amount,
        store=commerce.store_code(session, made.store_id),
        points_taken_back=made.points_taken_back or 0,
        points_given_back=made.points_given_back or 0, points_short=made.points_short or 0,
        points_short_value=made.points_short_value or Decimal(0),
        coupons_restored=made.coupons_restored or 0,
        free_shipping_restored=bool(made.free_shipping_restored),
        referral_revoked=bool(made.referral_revoked), tier_lowered_to=made.tier_lowered_to,
        coupon_clawed_back=made.coupon_clawed_back or Decimal(0),
        points_charged=made.points_charged or Decimal(0),
        coupons_clawed_back=made.coupons_clawed_back or [],
        tier_gifts_withdrawn=made.tier_gifts_withdrawn or 0,
        journey_coupons_withdrawn=made.journey_coupons_withdrawn or 0,
        journey_coupons_charged=made.journey_coupons_charged or Decimal(0),
        journey_points_taken_back=made.journey_points_taken_back or 0,
        journey_points_short=made.journey_points_short or 0, replayed=replayed,
    )  # fmt: skip


@dataclass(frozen=True)
class ClawedBack:
    amount: Decimal = Decimal(0)
    names: tuple[str, ...] = ()


def line_worth(session: Session, order: Order, lines: list[OrderLine]) -> dict[int, Decimal]:
    """What each line was paid (checkout/paid.py), by line number: what its units give back."""
    return paid.paid(_paid_lines(lines), discount_total=order.discount_total,
                     coupons=[use for use, _ in _uses(session, order)[0]])  # fmt: skip


def _paid_lines(lines: list[OrderLine]) -> list[paid.Line]:
    return [paid.Line(li.line_no, li.sku, li.category, li.line_total, li.quantity) for li in lines]


def _uses(
    session: Session, order: Order
) -> tuple[list[tuple[paid.CouponUse, str]], Decimal]:  # fmt: skip
    """The order's coupons, then the points it was paid with, placed as the sale placed them
    (named, for what a claw-back says); and what those points were worth."""
    uses = [(_use(t, discount), t.name)
            for discount, t in coupons.used_on_order(session, order_id=order.id)]  # fmt: skip
    spent = points.paid_with(session, order_id=order.id)
    if spent is None:
        return uses, Decimal(0)
    return [*uses, (paid.points_use(*spent), "points")], spent[0]


def _use(t: CouponTemplate, discount: Decimal) -> paid.CouponUse:
    """How a coupon of this template was placed on an order's lines (checkout/paid.py)."""
    return paid.CouponUse(
        discount, t.free_sku if t.kind == "free_item" else None, t.categories,
        threshold=max(t.min_spend, t.spend or Decimal(0)),
        excluded=tuple(t.excluded_categories or ()), min_items=t.min_items or 0,
        every=(t.spend or Decimal(0)) if t.repeat else Decimal(0), each=t.amount or Decimal(0),
        ladder=t.ladder if t.steps else (), per_group=t.kind == "nth_item",
    )  # fmt: skip


def _amount(
    session: Session, order: Order, req: RefundLines, left: Decimal,
    policy: returns_policy.Policy, unit: Decimal,
) -> Weighed:  # fmt: skip
    """What the units returned were paid (checkout/paid.py: a free item nothing, a coupon on
    some categories off those lines), or all that is left; refuses more of a line than was
    bought and not yet returned. Under a policy that claws coupons back, less what the units
    kept now cost more (`_clawed`)."""
    if not req.lines:
        return Weighed(left, True, ClawedBack(), left)
    lines = {li.line_no: li for li in commerce.order_lines(session, order.id)}
    returned = _returned_units(session, order.id)
    uses, points_value = _uses(session, order)
    worth = paid.paid(_paid_lines(list(lines.values())), discount_total=order.discount_total,
                      coupons=[use for use, _ in uses])  # fmt: skip
    amount, back = Decimal(0), defaultdict[int, Decimal](Decimal)
    for n, want in enumerate(req.lines):
        line = lines.get(want.line_no)
        if line is None:
            raise ValidationFailed(
                f"the order has no line {want.line_no}", field=f"lines.{n}.line_no",
                ctx={"line": want.line_no},
            )  # fmt: skip
        units = line.quantity - returned[want.line_no]
        if want.quantity > units:
            raise ValidationFailed(
                f"line {want.line_no}: {units} left to return", field=f"lines.{n}.quantity",
                ctx={"line": want.line_no, "left": units},
            )  # fmt: skip
        returned[want.line_no] += want.quantity
        back[want.line_no] += Decimal(want.quantity) / line.quantity
    amount = sum((worth[n] * f for n, f in back.items()), Decimal(0))
    amount = min(to_unit(max(amount, Decimal(0)), unit), left)
    whole = all(returned[no] >= li.quantity for no, li in lines.items())
    if whole:
        return Weighed(left, True, ClawedBack(), left, worth)  # the rest, no cent left over
    spent = _points_share(order, lines, uses, worth, back, points_value)
    if policy.coupon_threshold == "claw_back" and any(use.conditional for use, _ in uses):
        return replace(_clawed(order, lines, returned, uses, worth, left, amount, unit),
                       points_share=spent)  # fmt: skip
    return Weighed(amount, False, ClawedBack(), amount, worth, points_share=spent)


def _points_share(
    order: Order, lines: dict[int, OrderLine], uses: list[tuple[paid.CouponUse, str]],
    worth: Mapping[int, Decimal], back: Mapping[int, Decimal], points_value: Decimal,
) -> Decimal | None:  # fmt: skip
    """The share of the points the order was paid with that the units returned (`back`, the
    fraction of each line) were paid with: what each line was paid before the points, less
    after. A gift card points did not pay for gives none back. None when it had no points."""
    if points_value <= 0:
        return None
    # the coupons alone: the points come last in `uses`
    before = paid.paid(_paid_lines(list(lines.values())),
                       discount_total=order.discount_total - points_value,
                       coupons=[use for use, _ in uses[:-1]])  # fmt: skip
    on = sum(((before[n] - worth[n]) * f for n, f in back.items()), Decimal(0))
    return min(max(on / points_value, Decimal(0)), Decimal(1))


def _clawed(
    order: Order, lines: dict[int, OrderLine], returned: dict[int, int],
    uses: list[tuple[paid.CouponUse, str]], worth: dict[int, Decimal], left: Decimal,
    amount: Decimal, unit: Decimal,
) -> Weighed:  # fmt: skip
    """The money back when coupons whose threshold the kept goods miss are clawed back: all
    that is left of the order, less what the kept units now cost (paid.due), less what the
    order charged besides its goods (shipping). Measured from what is left, not from this
    return's lines, so that a coupon clawed back by an earlier return is not clawed twice, and
    its share on units kept then and returned now comes back with them. Never below zero: a
    return that costs the customer more than its units were paid gives nothing back."""
    kept = {n: Decimal(li.quantity - returned[n]) / li.quantity for n, li in lines.items()}
    owed = paid.due(_paid_lines(list(lines.values())), kept=kept,
                    discount_total=order.discount_total, coupons=[u for u, _ in uses])  # fmt: skip
    besides = order.total - sum(worth.values(), Decimal(0))  # shipping, and what else it charged
    back = to_unit(left - owed.amount - besides, unit)
    back = min(max(back, Decimal(0)), left)
    if not owed.missed:  # nothing clawed back now; a coupon clawed back before comes back here
        return Weighed(back, False, ClawedBack(), amount, worth)
    names = tuple(uses[i][1] for i in owed.missed)
    return Weighed(back, False, ClawedBack(max(amount - back, Decimal(0)), names), amount, worth)
