"""Checkout: quote a basket for a member, and commit it — order, coupons, points spent and
earned, stats and tier — in one transaction, idempotent on the till's order id. CHK-1, CHK-2.

Checkout is an orchestrator (docs/architecture.md): it resolves who, prices with the areas'
rules, and calls their use cases; it owns no tables.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.checkout import pricing, quotes
from omo.checkout.schemas import (
    CommitQuote,
    CommitRequest,
    CommitResult,
    CouponLine,
    QuoteLine,
    QuoteNotice,
    QuoteRead,
    QuoteRequest,
    TierOutlook,
)
from omo.commerce import service as commerce
from omo.commerce.schemas import OrderIn
from omo.coupons import service as coupons
from omo.coupons.rules import Basket, BasketLine, InOrder, Refused
from omo.db import UnitOfWork
from omo.ingest import service as ingest
from omo.members import service as members
from omo.members.identifiers import Identifier
from omo.points import ledger
from omo.points import service as points
from omo.points.rules import LineFacts, OrderFacts, points_for_order
from omo.shared import clock, versions
from omo.shared.errors import Conflict, DomainError, ValidationFailed
from omo.shared.money import CENT, within_an_order
from omo.shared.pins import memo
from omo.shared.prepared import queues
from omo.tiers import service as tiers
from omo.tiers import shipping
from omo.tiers.policy import Level


@dataclass
class Priced:
    price: pricing.Price
    read: QuoteRead
    member_id: int | None
    baskets: dict[str, Basket]
    shipment: str | None  # the month whose free shipment of the tier the sale uses
    earn_on: list[tuple[str | None, Decimal]]  # each line's category and what it is paid


def quote(
    uow: UnitOfWork, *, req: QuoteRequest, region: str, secret: str | None = None,
    unit: Decimal = CENT,
) -> QuoteRead:  # fmt: skip
    """The basket's price now; with `secret`, sealed as a quote to commit as it is. `unit`:
    the smallest amount the tills take (Settings.price_unit)."""
    idents = ingest.normalise_all(req.customer, field="customer", region=region)
    now = clock.now()
    with uow.read() as session:
        read = _price(session, req, idents, now, strict=False, unit=unit).read
        tier_outlook(session, read, now)
    return sealed(read, req, now=now, secret=secret)


def tier_outlook(session: Session, read: QuoteRead, now: datetime) -> None:
    """升等差額提示: the level the sale brings the member to at once, else the next level and
    what it still misses after the sale, for the till or the web shop to say (再消費 NT$1,200
    即可升等金卡). Not on a commit: the sale itself says where the member ends."""
    if read.member_id is None:
        return
    seen = tiers.outlook_of(session, member_id=read.member_id, total=read.total,
                            points=read.points_to_earn, now=now)  # fmt: skip
    level = seen.reached or seen.next
    if level is None or (seen.reached is None and seen.short is None):
        return
    short = seen.short
    if short is not None and level.metric in ("spend", "single_order"):
        short = short.quantize(CENT)
    read.tier_outlook = TierOutlook(reached=seen.reached is not None, level=level.code,
                                    name=level.name, metric=level.metric, short=short)  # fmt: skip


def sealed(read: QuoteRead, req: QuoteRequest, *, now: datetime, secret: str | None) -> QuoteRead:
    """The quote with its token to commit it as it is (with a `secret`): the basket as priced,
    with the points it took if it lowered them."""
    if secret is not None:
        priced = req.model_copy(update={"points": read.points_redeemed})
        read.quote = quotes.seal(priced, total=read.total, now=now, secret=secret)
    return read


def price_read(
    session: Session, req: QuoteRequest, idents: list[Identifier], now: datetime, unit: Decimal
) -> QuoteRead:
    """A quote's price of the basket, in the caller's transaction."""
    return _price(session, req, idents, now, strict=False, unit=unit).read


def commit_quote(
    uow: UnitOfWork, *, body: CommitQuote, principal: Principal, currency: str, region: str,
    secret: str, unit: Decimal = CENT,
) -> CommitResult:  # fmt: skip
    """Sell what a quote priced, at its total or not at all (checkout/quotes.py)."""
    sealed = quotes.unseal(body.quote, secret=secret)
    if sealed.req.points:
        principal.require("points:write")  # as /checkout/commit asks of points paid with
    sale = sealed.req.model_dump(mode="json", exclude_defaults=True) | body.model_dump(
        mode="json", exclude={"quote"}, exclude_none=True
    )
    req = CommitRequest.model_validate(sale)
    if clock.now() >= sealed.expires:
        with uow.read() as session:  # a retry of a sale made in time is answered, however late
            made = commerce.find_order(
                session, channel=req.channel.value, external_id=req.external_id
            )
        if made is None:
            sealed.fresh(clock.now())
    return commit(uow, req=req, principal=principal, currency=currency, region=region,
                  expect_total=sealed.total, unit=unit)  # fmt: skip


def commit(
    uow: UnitOfWork, *, req: CommitRequest, principal: Principal, currency: str, region: str,
    expect_total: Decimal | None = None, unit: Decimal = CENT,
) -> CommitResult:  # fmt: skip
    """`expect_total`: a quote's; the sale is refused (`price_changed`) if it now comes to
    another."""
    idents = ingest.normalise_all(req.customer, field="customer", region=region)
    digest = hashlib.sha256(b"checkout:" + req.model_dump_json().encode()).hexdigest()

    def run(session: Session) -> CommitResult:
        return _commit_in(session, req, idents, digest, principal, currency, expect_total, unit)

    try:
        return uow.run(run)
    except _RecordedMeanwhile:
        return uow.run(run)  # rolled back; this time the order is found and answered


class _RecordedMeanwhile(Exception):
    """The sale being committed was recorded by another try of the same request meanwhile."""


def _commit_in(
    session: Session,
    req: CommitRequest,
    idents: list[Identifier],
    digest: str,
    principal: Principal,
    currency: str,
    expect_total: Decimal | None,
    unit: Decimal,
) -> CommitResult:
    now = clock.now()
    # priced and written below: the reads, and the ids of the order and its points entry
    # (whose INSERTs then go with the rest of the sale), go with the retry's look-up
    if req.member_id is not None:
        _read_ahead(session, req, req.member_id, now, hold=True)
    commerce.order_id_ahead(session)
    ledger.entry_id_ahead(session)
    held = commerce.recorded_order(
        session, channel=req.channel.value, external_id=req.external_id, digest=digest
    )
    if held is not None:
        earned = ledger.find(session, f"earn:order:{held.id}")
        return CommitResult(
            order=commerce.order_result(session, held, replayed=True), price=None,
            points_earned=earned.points if earned else 0, replayed=True,
        )  # fmt: skip
    try:
        p = _price(session, req, idents, now, strict=True, unit=unit)
    except DomainError:
        # On PostgreSQL a retry can come while its first try is still committing: it reads no
        # order, then finds the points or the coupon spent — by its own sale. That sale is
        # recorded: answer with it, as for any retry. (Refusals after the order is written
        # below are the rules': the unique order id keeps a second try from getting there.)
        if commerce.find_order(session, channel=req.channel.value, external_id=req.external_id):
            raise _RecordedMeanwhile from None
        raise
    if expect_total is not None and p.read.total != expect_total:
        raise Conflict(
            f"the price changed since the quote: {expect_total} then, {p.read.total} now; "
            "quote again", field="quote", code="price_changed",
            ctx={"quoted": str(expect_total), "total": str(p.read.total)},
        )  # fmt: skip
    order = _order_in(req, p, now, currency)
    result = ingest.record_order_in(
        session, order=order, idents=idents, digest=digest, principal=principal, now=now,
        unrecorded=True, member_current=True, earn_on=p.earn_on,
    )  # fmt: skip
    prefix = f"order:{req.channel.value}:{req.external_id}"
    for outcome in p.price.coupons:
        try:
            coupons.redeem_in(
                session, code=outcome.code, basket=p.baskets[outcome.code],
                member_id=p.member_id, key=f"{prefix}:coupon:{outcome.code}",
                order_id=result.id, now=now, max_discount=outcome.discount,
            )  # fmt: skip
        except coupons.CouponRefused as exc:  # used by another till at the same instant
            exc.field = coupon_field(req, outcome.code)
            raise
    if p.price.points and p.member_id is not None:
        points.redeem_in(
            session, member_id=p.member_id, points=p.price.points, key=f"{prefix}:points",
            now=now, order_id=result.id, reason=f"paid part of order {req.external_id}",
        )  # fmt: skip
    if p.shipment is not None:
        shipping.use(
            session, order_id=result.id, period=p.shipment, now=now,
            amount=p.price.tier_shipping_discount,
        )  # fmt: skip
    award = memo(session, "points_earned").get(result.id)
    if not isinstance(award, int):
        entry = ledger.find(session, f"earn:order:{result.id}")
        award = entry.points if entry else 0
    return CommitResult(order=result, price=p.read, points_earned=award, replayed=False)


def _price(
    session: Session, req: QuoteRequest, idents: list[Identifier], now: datetime, *,
    strict: bool, unit: Decimal,
) -> Priced:  # fmt: skip
    notes: list[pricing.Note] = []
    if req.member_id is not None:
        _read_ahead(session, req, req.member_id, now, hold=strict)
    # the points rules and the tier programme, read below, in one statement
    versions.read_together(session, points.RULES_VERSION, tiers.PROGRAMME_VERSION)
    member_id = _member(session, req, idents, hold=strict)
    if req.store:
        commerce.store_by_code(session, req.store)
    catalogue = commerce.catalogue_for(session, (li.sku for li in req.lines))
    basket: list[BasketLine] = []
    marked_down: list[int] = []  # lines the till sells below their catalogue price
    for n, li in enumerate(req.lines):
        product = catalogue.get(li.sku)
        price = li.unit_price if li.unit_price is not None else (product.price if product else None)
        if price is None:
            raise ValidationFailed(
                f"{li.sku} is not in the catalogue: give its unit_price",
                field=f"lines.{n}.unit_price", ctx={"sku": li.sku},
            )  # fmt: skip
        if product is not None and price < product.price:
            marked_down.append(n)
        basket.append(BasketLine(li.sku, product.category if product else None, li.quantity, price))
    within_an_order(((li.quantity, li.unit_price) for li in basket), req.shipping_fee,
                    field="lines")  # fmt: skip
    level = tiers.level_of(session, member_id=member_id) if member_id else None
    rate = level.benefits.discount_rate if level else Decimal(1)
    if rate != 1 and not _level_price_on(session, req.channel.value, notes):
        rate = Decimal(1)
    p = pricing.Price(lines=_level_lines(session, basket, rate, marked_down, unit),
                      shipping_fee=req.shipping_fee, unit=unit)  # fmt: skip
    baskets, _, found = _apply_coupons(session, p, req, member_id, now)
    if rate != 1 and any(not h.with_level_price for h in found):
        # a coupon not used with the level's price: priced again without it, kept if it applies
        full = pricing.Price(lines=pricing.tier_lines(basket, Decimal(1)),
                             shipping_fee=req.shipping_fee, unit=unit)  # fmt: skip
        again = _apply_coupons(session, full, req, member_id, now)
        alone = [h.template for h in again[1] if not h.with_level_price]
        if alone:
            # the better for the customer (擇優): that, or the level's price without those
            # coupons, which then stay unused
            level_only = pricing.Price(lines=list(p.lines), shipping_fee=req.shipping_fee,
                                       unit=unit)  # fmt: skip
            kept = _apply_coupons(session, level_only, req, member_id, now, drop=set(alone))
            if level_only.total <= full.total:
                p, baskets = level_only, kept[0]
                _dropped_for_the_level_price(p, full.total)
            else:
                p, baskets = full, again[0]
                names = ", ".join(alone)
                notes.append(pricing.Note("no_level_price",
                                          f"no level price with a coupon of {names}",
                                          {"coupons": names}))  # fmt: skip
    refused = [c for c in p.coupons if not c.applied]
    pricing.next_steps(p, notes)
    if strict and refused:
        first = refused[0]
        raise coupons.CouponRefused(
            first.reason or "refused", f"{first.code}: {first.message}",
            {**first.ctx, "coupon": first.code}, field=coupon_field(req, first.code),
        )  # fmt: skip
    shipment = _free_shipment(session, p, member_id, level, now)
    rules = points.rules_in_force(session)
    balance = ledger.balance(session, member_id=member_id, now=now).available if member_id else 0
    if req.points and member_id is None:
        raise ValidationFailed("points need a member", field="points")
    pricing.take_points(p, rules, balance, req.points, strict=strict, notes=notes,
                        channel=req.channel.value)  # fmt: skip
    to_earn = 0
    # each coupon off its own lines, the points paid with off what the lines they pay for have
    # left: a coupon on 美妝保養 lowers what 美妝保養 earns, not the 服飾 beside it, and a gift
    # card points do not pay for earns on its price (a return weighs so too)
    earn_on = [(li.category, v) for li, v in zip(p.lines, pricing.worth(p, with_points=True),
                                                 strict=True)]  # fmt: skip
    if member_id is not None:
        facts = OrderFacts(
            channel=req.channel.value, store=req.store, ordered_at=now,
            lines=tuple(LineFacts(c, v) for c, v in earn_on), order_discount=Decimal(0),
        )  # fmt: skip
        to_earn = points_for_order(
            rules, facts, tier_multiplier=level.benefits.points_multiplier if level else Decimal(1),
            birthday=points.birthday_of(session, rules, member_id),
        ).points  # fmt: skip
        ledger.within_an_entry(to_earn, field="lines")
    read = QuoteRead(
        member_id=member_id, tier=level.code if level else None,
        lines=[
            QuoteLine(sku=li.sku, name=catalogue[li.sku].name if li.sku in catalogue else None,
                      category=li.category, quantity=li.quantity, unit_price=li.unit_price,
                      tier_discount=li.tier_discount, amount=li.amount)
            for li in p.lines
        ],
        subtotal=p.subtotal, tier_discount=p.tier_discount,
        coupons=[
            CouponLine(code=c.code, applied=c.applied, discount=c.discount,
                       shipping_discount=c.shipping_discount, reason=c.reason, message=c.message,
                       ctx=dict(c.ctx))
            for c in p.coupons
        ],
        coupon_discount=p.coupon_discount, points_balance=balance, points_cap=p.points_cap,
        points_redeemed=p.points, points_value=p.points_value, shipping_fee=p.shipping_fee,
        shipping_discount=p.shipping_discount + p.tier_shipping_discount,
        tier_shipping_discount=p.tier_shipping_discount, total=p.total, points_to_earn=to_earn,
        notes=[n.message for n in notes],
        notices=[QuoteNotice(reason=n.reason, message=n.message, ctx=dict(n.ctx)) for n in notes],
    )  # fmt: skip
    return Priced(p, read, member_id, baskets, shipment, earn_on)


def coupon_field(req: QuoteRequest, code: str) -> str:
    """Where the sale names a refused coupon: `coupon_codes.N`, N its first place there."""
    wanted = coupons.normalise_code(code)
    at = next((n for n, c in enumerate(req.coupon_codes) if coupons.normalise_code(c) == wanted),
              None)  # fmt: skip
    return "coupon_codes" if at is None else f"coupon_codes.{at}"


def _apply_coupons(
    session: Session, p: pricing.Price, req: QuoteRequest, member_id: int | None, now: datetime,
    drop: set[str] | None = None,
) -> tuple[dict[str, Basket], list[InOrder], list[InOrder]]:  # fmt: skip
    """Each code in turn on what the ones before it left (`p` takes them): the basket each saw,
    those applied, and every code found (applied or refused). A code of a template in `drop`
    is left unused (`level_price_better`)."""
    baskets: dict[str, Basket] = {}
    applied: list[InOrder] = []
    found: list[InOrder] = []
    for code in coupons.distinct_codes(req.coupon_codes):
        seen = pricing.basket_after(p, req.channel.value, req.store)
        baskets[code] = seen
        held, result = coupons.price_in_order(
            session, code=code, basket=seen, member_id=member_id, now=now, applied=applied
        )
        if drop and held is not None and held.template in drop and not isinstance(result, Refused):
            result = Refused("level_price_better", "the level's price costs less without it")
        pricing.add_coupon(p, code, result)
        if held is not None:
            found.append(held)
            if not isinstance(result, Refused):
                applied.append(held)
    return baskets, applied, found


def _dropped_for_the_level_price(p: pricing.Price, with_them: Decimal) -> None:
    """The coupons left unused because the level's price costs less: each says both totals."""
    for c in p.coupons:
        if c.reason == "level_price_better":
            c.message = (f"the level's price comes to {p.total} without this coupon, "
                         f"{with_them} with it")  # fmt: skip
            c.ctx = {"without": str(p.total), "with_coupon": str(with_them)}


def _level_price_on(session: Session, channel: str, notes: list[pricing.Note]) -> bool:
    """Whether the programme gives the level's price on this channel (會員價僅限門市); if not,
    a notice says so."""
    only = tiers.programme_in_force(session).discount_channels
    if only is None or channel in only:
        return True
    notes.append(pricing.Note("no_level_price_here", f"no level price on {channel}",
                              {"channel": channel}))  # fmt: skip
    return False


def _level_lines(
    session: Session, basket: list[BasketLine], rate: Decimal, marked_down: list[int],
    unit: Decimal,
) -> list[pricing.PricedLine]:  # fmt: skip
    """The level's discount on the basket, but on the categories the programme keeps out of it
    and, if it says so, the lines already marked down."""
    if rate == 1:
        return pricing.tier_lines(basket, rate)
    programme = tiers.programme_in_force(session)
    full_price = () if programme.discount_marked_down else marked_down
    per_unit = programme.discount_per == "unit"
    return pricing.tier_lines(basket, rate, programme.discount_excludes, full_price, unit,
                              per_unit=per_unit)  # fmt: skip


def _free_shipment(
    session: Session,
    p: pricing.Price,
    member_id: int | None,
    level: Level | None,
    now: datetime,
) -> str | None:
    """What coupons left of the shipping, waived when the member's level gives free shipments
    and one is left this month: the month it uses. Counted while the commit holds the member."""
    if member_id is None or level is None or p.shipping <= 0:
        return None
    allowed = level.benefits.monthly_free_shipping
    if not allowed:
        return None
    zone = tiers.programme_in_force(session).timezone
    quota = shipping.quota_of(session, member_id=member_id, allowed=allowed, zone=zone, now=now)
    if not quota.left:
        return None
    pricing.waive_shipping(p)
    return quota.period


def _read_ahead(
    session: Session, req: QuoteRequest, member_id: int, now: datetime, *, hold: bool
) -> None:
    """The reads _price is about to make, in its order, sent together with the first of them
    (PostgreSQL, in a transaction: one round trip instead of six). Each read below takes its
    rows, or reads again if it asks otherwise (a merged member) or something was written."""
    if not queues(session):  # SQLite: nothing to send ahead, nor to work out for it
        return
    versions.read_together_ahead(session, points.RULES_VERSION, tiers.PROGRAMME_VERSION)
    members.current_member_id_ahead(session, member_id, hold=hold)
    if req.store:
        commerce.store_ahead(session, req.store)
    commerce.catalogue_ahead(session, (li.sku for li in req.lines))
    tiers.level_ahead(session, member_id=member_id)
    ledger.balance_ahead(session, member_id=member_id, now=now)


def _member(
    session: Session, req: QuoteRequest, idents: list[Identifier], *, hold: bool
) -> int | None:
    """Who the sale is for; a commit (`hold`) holds a member named by id as it reads it."""
    named = set(members.members_named_by(session, idents).values())
    if req.member_id is not None:
        member = members.current_member_id(session, req.member_id, hold=hold)
        if named - {member}:
            raise ValidationFailed(
                "member_id and the customer identifiers name different members", field="member_id"
            )
        return member
    if len(named) > 1:
        raise ValidationFailed(
            "the customer identifiers name more than one member; commit merges them, a quote "
            "cannot choose", field="customer",
        )  # fmt: skip
    return next(iter(named), None)


def _order_in(req: CommitRequest, p: Priced, now: datetime, currency: str) -> OrderIn:
    """The priced sale as an order; what only the order can check (a pos sale names its store,
    fulfilment fits the channel) comes back as a 422 naming the field, not a 500."""
    try:
        return _build_order(req, p, now, currency)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        field, sep, rest = msg.partition(": ")
        if sep and field.isidentifier():
            raise ValidationFailed(rest, field=field) from None
        loc = ".".join(str(x) for x in err["loc"]) or None
        raise ValidationFailed(msg, field=loc) from None


def _build_order(req: CommitRequest, p: Priced, now: datetime, currency: str) -> OrderIn:
    price = p.price
    return OrderIn.model_validate(
        {
            "channel": req.channel, "external_id": req.external_id,
            "ordered_at": req.ordered_at or now, "store": req.store,
            "fulfilment": req.fulfilment, "status": "completed", "currency": currency,
            "member_id": p.member_id,
            "customer": [i.model_dump(exclude_none=True) for i in req.customer],
            "lines": [
                {"sku": li.sku, "category": li.category, "quantity": li.quantity,
                 "unit_price": li.unit_price, "discount": li.tier_discount}
                for li in price.lines
            ],
            "discount_total": price.coupon_discount + price.points_value,
            "shipping_fee": price.shipping,
        }
    )  # fmt: skip
