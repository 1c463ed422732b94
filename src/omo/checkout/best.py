"""The member's coupons that take the most off a basket (推薦最優惠組合, CHK-1): a till or a web
shop asks which of the coupons a member holds to use, rather than the cashier trying each.

The basket is priced as a quote prices it, with each usable coupon the member holds added to
the codes given: those that apply are ranked by what the basket then costs. From each of the
best few, coupons are added one at a time, each time the one that lowers the price most, while
one does and the order takes more (a coupon not used with others, or beside some, is refused
in the pricing as at a sale, so it is never picked beside them). The lowest price wins; on a
tie, fewer coupons (the rest are kept for later), then those ending soonest. What the customer
pays is measured before the points (a coupon that leaves less for points to pay is not worse).

`basket_coupons` lists the member's coupons as each would price on the basket, those that
apply and those that do not with why (可用／不可用優惠券), for a web shop's checkout page;
`basket_claimable` the coupons the member may still claim (領券中心), each priced as the coupon
a claim would give (never written), so the page can say 領取後折 NT$100 before the tap.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from omo.checkout import service
from omo.checkout.schemas import (
    BasketClaimable,
    BasketCoupon,
    CouponLine,
    QuoteNotice,
    QuoteRead,
    QuoteRequest,
)
from omo.coupons import claims
from omo.coupons import service as coupons
from omo.db import UnitOfWork
from omo.ingest import service as ingest
from omo.members.identifiers import Identifier
from omo.shared import clock
from omo.shared.money import CENT

MOST = 5  # the coupons one order takes (QuoteRequest.coupon_codes)
WEIGHED = 8  # the member's coupons weighed together: those that take most alone
STARTS = 3  # the best alone, each tried as the first

Price = Callable[[list[str]], QuoteRead]


def best_quote(
    uow: UnitOfWork, *, req: QuoteRequest, region: str, secret: str | None = None,
    unit: Decimal = CENT,
) -> QuoteRead:  # fmt: skip
    """The quote with the codes given and the member's coupons that take the most off; with
    `secret`, sealed with them. A notice names those picked (`coupons_picked`)."""
    idents = ingest.normalise_all(req.customer, field="customer", region=region)
    now = clock.now()
    given = coupons.distinct_codes(req.coupon_codes)
    with uow.read() as session:

        def price(codes: list[str]) -> QuoteRead:
            asked = req.model_copy(update={"coupon_codes": codes})
            return service.price_read(session, asked, idents, now, unit)

        codes, read = given, price(given)
        if read.member_id is not None and len(given) < MOST:
            held = coupons.usable_held(session, member_id=read.member_id, now=now)
            taken = {coupons.normalise_code(c) for c in given}
            codes, read = _best(price, given, [c for c in held if c not in taken], read)
        service.tier_outlook(session, read, now)
    picked = codes[len(given) :]
    if picked:
        said = ", ".join(picked)
        read.notes.append(f"coupons picked: {said}")
        read.notices.append(QuoteNotice(reason="coupons_picked", message=f"coupons picked: "
                                        f"{said}", ctx={"coupons": said}))  # fmt: skip
    return service.sealed(read, req.model_copy(update={"coupon_codes": codes}), now=now,
                          secret=secret)  # fmt: skip


def basket_coupons(
    uow: UnitOfWork, *, req: QuoteRequest, region: str, unit: Decimal = CENT
) -> list[BasketCoupon]:  # fmt: skip
    """Each coupon the member holds that is usable now, as it would price added to the codes
    given (the first four: an order takes five), 可用／不可用優惠券: those that apply first,
    the most off first, then those that do not, each with why. A guest holds none."""
    idents = ingest.normalise_all(req.customer, field="customer", region=region)
    now = clock.now()
    given = coupons.distinct_codes(req.coupon_codes)
    with uow.read() as session:
        base = service.price_read(session, req, idents, now, unit)
        if base.member_id is None:
            return []
        taken = {coupons.normalise_code(c) for c in given}
        held = [c for c in coupons.usable_held(session, member_id=base.member_id, now=now)
                if c not in taken]  # fmt: skip
        lines = {code: _beside(session, req, given, code, idents, now, unit) for code in held}
    found = {c.code: c for c in coupons.member_coupons(uow, member_id=base.member_id)}
    out = [BasketCoupon(coupon=found[code], applies=line.applied, line=line)
           for code, line in lines.items() if code in found]  # fmt: skip
    out.sort(key=lambda b: (not b.applies, -_off(b.line)))
    return out


def basket_claimable(
    uow: UnitOfWork, *, req: QuoteRequest, region: str, unit: Decimal = CENT
) -> list[BasketClaimable]:  # fmt: skip
    """Each coupon the member may claim now, as the coupon a claim gives would price added to
    the codes given (the first four), as basket_coupons lists those held: those that would
    apply first, the most off first, then those that would not, each with why. A guest may
    claim none."""
    idents = ingest.normalise_all(req.customer, field="customer", region=region)
    now = clock.now()
    given = coupons.distinct_codes(req.coupon_codes)
    with uow.read() as session:
        base = service.price_read(session, req, idents, now, unit)
        if base.member_id is None:
            return []
        out = []
        for read, row, t in claims.offered(session, member_id=base.member_id, now=now):
            code = coupons.tried_on(session, row, t, member_id=base.member_id, now=now)
            line = _beside(session, req, given, code, idents, now, unit)
            line = line.model_copy(update={"code": row.code})
            out.append(BasketClaimable(claimable=read, applies=line.applied, line=line))
    out.sort(key=lambda b: (not b.applies, -_off(b.line)))
    return out


def _beside(
    session: Session, req: QuoteRequest, given: list[str], code: str,
    idents: list[Identifier], now: datetime, unit: Decimal,
) -> CouponLine:  # fmt: skip
    """The code's line on the basket, added to the codes given (the first four: an order
    takes five)."""
    asked = req.model_copy(update={"coupon_codes": [*given[: MOST - 1], code]})
    priced = service.price_read(session, asked, idents, now, unit)
    return next(c for c in priced.coupons if c.code == code)


def _off(line: CouponLine) -> Decimal:
    return line.discount + line.shipping_discount


def _best(
    price: Price, given: list[str], held: list[str], base: QuoteRead
) -> tuple[list[str], QuoteRead]:  # fmt: skip
    alone = []
    for n, code in enumerate(held):
        read = price([*given, code])
        if _applied(read, [code]):
            alone.append((_cost(read), n, code, read))
    alone.sort(key=lambda a: (a[0], a[1]))
    ranked = [code for _, _, code, _ in alone[:WEIGHED]]
    best = (_cost(base), len(given), given, base)
    for _, _, first, read in alone[:STARTS]:
        codes, read = _grow(price, given, [*given, first], read, ranked)
        best = min(best, (_cost(read), len(codes), codes, read), key=lambda b: (b[0], b[1]))
    return best[2], best[3]


def _grow(
    price: Price, given: list[str], codes: list[str], read: QuoteRead, pool: list[str]
) -> tuple[list[str], QuoteRead]:  # fmt: skip
    """From `codes` (the `given` and a first pick, priced as `read`), the coupon of `pool` that
    lowers the price most, one at a time, while one does."""
    while len(codes) < MOST:
        tried = []
        for n, code in enumerate(pool):
            # every coupon picked still applies beside it (a sale refuses a code that does not)
            added = [*codes, code]
            if code not in codes and _applied(r := price(added), added[len(given) :]):
                tried.append((_cost(r), n, code, r))
        if not tried:
            break
        cost, _, code, r = min(tried, key=lambda t: (t[0], t[1]))
        if cost >= _cost(read):
            break
        codes, read = [*codes, code], r
    return codes, read


def _cost(read: QuoteRead) -> Decimal:
    """What the customer pays before the points."""
    return read.total + read.points_value


def _applied(read: QuoteRead, codes: list[str]) -> bool:
    applied = {c.code for c in read.coupons if c.applied}
    return all(code in applied for code in codes)
