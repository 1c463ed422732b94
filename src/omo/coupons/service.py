"""Use cases of the coupons area."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import segno
from sqlalchemy import BigInteger, and_, case, func, select, type_coerce, update
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.commerce.channels import COUNTED_STATUSES
from omo.commerce.models import Order
from omo.commerce.stats import money_sum
from omo.coupons import rules
from omo.coupons.models import Coupon, CouponRedemption, CouponTemplateRow
from omo.coupons.rules import Basket, BasketLine, CouponState, CouponTemplate, Priced
from omo.coupons.schemas import (
    BasketIn,
    CouponCheck,
    CouponRead,
    CouponTerms,
    IssueResult,
    RedemptionRead,
    TemplateKpis,
    TemplateRead,
)
from omo.db import UnitOfWork
from omo.members import service as members
from omo.shared import clock
from omo.shared.codes import random_code
from omo.shared.errors import Conflict, NotFound, ValidationFailed
from omo.shared.money import CENT, off_unit, within_an_order
from omo.shared.rows import rows_of

UNLIMITED = 1_000_000_000


class CouponRefused(ValidationFailed):
    def __init__(
        self, reason: str, message: str, ctx: Mapping[str, Any] | None = None, *,
        field: str = "code",
    ) -> None:  # fmt: skip
        super().__init__(message, field=field, code=reason, ctx=ctx)


def new_code() -> str:
    raw = random_code(12)  # 60 random bits
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(code: str) -> str:
    """What a person types or a scanner reads: case, spaces, O for 0 and I/L for 1 forgiven."""
    text = code.strip().upper().replace(" ", "").replace("-", "")
    text = text.translate(str.maketrans("OIL", "011"))
    return f"{text[:4]}-{text[4:8]}-{text[8:]}" if len(text) == 12 else code.strip().upper()


def distinct_codes(codes: Iterable[str]) -> list[str]:
    """Each code once, as first typed: two forms of one code (abcd efgh ijkl, ABCD-EFGH-IJKL)
    are one coupon."""
    seen: dict[str, str] = {}
    for code in codes:
        seen.setdefault(normalise_code(code), code.strip())
    return list(seen.values())


# --- templates --------------------------------------------------------------------------------


def put_template(
    uow: UnitOfWork, *, code: str, template: CouponTemplate, actor: str | None = None,
    unit: Decimal = CENT,
) -> tuple[TemplateRead, bool]:  # fmt: skip
    """Create or change a template; coupons already issued keep their own dates. What it takes
    off is a whole number of the till's `unit` (Settings.price_unit), else it is refused."""
    off = {"amount": template.amount, "max_discount": template.max_discount}
    off |= {f"steps.{n}.1": step[1] for n, step in enumerate(template.steps or [])}
    if (found := off_unit(off, unit)) is not None:
        raise ValidationFailed(
            f"{found[1]} is not a whole number of the price unit {unit}", field=found[0],
            ctx={"amount": str(found[1]), "unit": str(unit)},
        )  # fmt: skip
    with uow.write() as session:
        if template.min_level is not None:
            from omo.tiers import service as tiers  # tiers gives coupons: it imports this

            tiers.known_level(session, template.min_level, field="min_level")
        now = clock.now()
        row = session.scalar(select(CouponTemplateRow).where(CouponTemplateRow.code == code))
        created = row is None
        if row is None:
            row = CouponTemplateRow(code=code, issued=0, redeemed=0, active=True, created_at=now)
            session.add(row)
        row.definition = template.model_dump(mode="json")
        row.max_issued = template.max_issued
        row.max_redemptions = template.max_redemptions
        row.updated_at = now
        session.flush()
        audit.record(
            session, actor=actor, action="coupon_template.put", target=f"coupon_template:{code}",
            detail={"created": created},
        )  # fmt: skip
        return _template_read(row), created


def list_templates(uow: UnitOfWork) -> list[TemplateRead]:
    with uow.read() as session:
        rows = session.scalars(select(CouponTemplateRow).order_by(CouponTemplateRow.code))
        return [_template_read(r) for r in rows]


def _template_read(row: CouponTemplateRow) -> TemplateRead:
    return TemplateRead(
        code=row.code, template=CouponTemplate.model_validate(row.definition), active=row.active,
        issued=row.issued, redeemed=row.redeemed,
    )  # fmt: skip


def template_row(session: Session, code: str) -> CouponTemplateRow:
    row = session.scalar(select(CouponTemplateRow).where(CouponTemplateRow.code == code))
    if row is None:
        raise NotFound(f"no coupon template {code!r}", field="template", ctx={"template": code})
    return row


# --- issuing ----------------------------------------------------------------------------------


def issue(
    uow: UnitOfWork, *, template_code: str, member_ids: Sequence[int], key: str
) -> IssueResult:
    """Issue a coupon to each member (a campaign, a segment, a trigger). Re-running the same key
    issues nothing new; members past the per-member limit or the budget are refused by name."""
    return uow.run(
        lambda session: issue_in(
            session, template_code=template_code, member_ids=member_ids, key=key
        )
    )


def has_template(session: Session, code: str) -> bool:
    return (
        session.scalar(select(CouponTemplateRow.id).where(CouponTemplateRow.code == code))
        is not None
    )


def issue_in(
    session: Session, *, template_code: str, member_ids: Sequence[int], key: str
) -> IssueResult:
    """issue() inside the caller's transaction (a journey step issues with its other effects)."""
    now = clock.now()
    row = template_row(session, template_code)
    t = CouponTemplate.model_validate(row.definition)
    if t.shared_code:
        raise ValidationFailed("a shared-code template has one public code", field="template")
    issued: list[CouponRead] = []
    refused: dict[int, str] = {}
    if len(set(member_ids)) == 1:  # a journey's step, a claim: the member first, as a sale
        members.hold_members(session, list(member_ids))
    # issues of one template take turns before counting what each member holds, so that two
    # at once (a claim and a batch to a segment) cannot each find a member below the limit;
    # the budget's UPDATE took this lock anyway, after the count
    _hold_template(session, row.id)
    for member_id in dict.fromkeys(member_ids):
        issue_key = issue_key_of(template_code, key, member_id)
        held = session.scalar(select(Coupon).where(Coupon.issue_key == issue_key))
        if held is not None:
            issued.append(coupon_read(held, row, t))
            continue
        try:
            member = members.current_member(session, member_id)
        except NotFound:
            refused[member_id] = "no_such_member"
            continue
        if member.id != member_id:
            refused[member_id] = f"merged_into:{member.id}"
            continue
        have = session.scalar(
            select(func.count()).where(Coupon.template_id == row.id, Coupon.member_id == member_id)
        )
        if (have or 0) >= t.per_member_limit:
            refused[member_id] = "per_member_limit"
            continue
        if not take_budget(session, row.id, "issued"):
            refused[member_id] = "budget_exhausted"
            continue
        coupon = _new_coupon(session, row.id, t, member_id=member_id, issue_key=issue_key, now=now)
        issued.append(coupon_read(coupon, row, t))
    return IssueResult(issued=issued, refused=refused)


def _hold_template(session: Session, template_id: int) -> None:
    """Lock the template's row for the transaction (PostgreSQL; SQLite's writer holds the
    database)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(CouponTemplateRow.id)
            .where(CouponTemplateRow.id == template_id)
            .with_for_update(key_share=True)
        )


def issue_key_of(template_code: str, key: str, member_id: int) -> str:
    """The key a coupon of the template issued under `key` to the member is stored under: an
    issue (a claim, a journey's step) run again finds it by it."""
    return f"{template_code}:{key}:{member_id}"


def withdraw_unused(
    session: Session, *, member_id: int, template_codes: Sequence[str] | None, key: str,
    issued_since: datetime, holders: Sequence[int] | None = None,
) -> int:  # fmt: skip
    """Void the member's coupons of these templates (None: of any) issued under `key` (any run
    of it: a tier gift's key names the month, a journey's its step) since `issued_since` and
    not used: what they were given for was taken back. `holders`: where the coupons may be now
    (a merge moves them to the survivor; their key still names the member issued to). Returns
    how many."""
    ids = _issued_under(session, member_id, template_codes, key, issued_since, holders, used=False)
    if not ids:
        return 0
    # as a redemption does: a conditional UPDATE, so a till using the coupon meanwhile keeps
    # it used (and not void), and what this counts is what it voided; what the session holds
    # unsent goes first, as the objects it holds are read again after
    session.flush()
    done = session.execute(
        update(Coupon)
        .where(Coupon.id.in_(ids), Coupon.status == "active", Coupon.uses == 0)
        .values(status="void")
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return int(getattr(done, "rowcount", 0) or 0)


def used_value(
    session: Session, *, member_id: int, key: str, issued_since: datetime,
    holders: Sequence[int] | None = None,
) -> Decimal:  # fmt: skip
    """What the member's coupons issued under `key` (as withdraw_unused finds them) took off
    where they were used, goods and shipping, less what was given back with a refund."""
    ids = _issued_under(session, member_id, None, key, issued_since, holders, used=True)
    if not ids:
        return Decimal(0)
    goods, shipping = session.execute(
        select(money_sum(CouponRedemption.discount), money_sum(CouponRedemption.shipping_discount))
        .where(CouponRedemption.coupon_id.in_(ids), CouponRedemption.reversed_at.is_(None))
    ).one()  # fmt: skip
    return Decimal(goods or 0) + Decimal(shipping or 0)


def _issued_under(
    session: Session, member_id: int, template_codes: Sequence[str] | None, key: str,
    issued_since: datetime, holders: Sequence[int] | None, *, used: bool,
) -> list[int]:  # fmt: skip
    query = (
        select(Coupon.id, Coupon.issue_key, CouponTemplateRow.code)
        .join(CouponTemplateRow, CouponTemplateRow.id == Coupon.template_id)
        .where(
            Coupon.member_id.in_(list(holders or [member_id])), Coupon.issued_at >= issued_since,
            Coupon.uses > 0 if used else and_(Coupon.status == "active", Coupon.uses == 0),
        )
    )  # fmt: skip
    if template_codes is not None:
        query = query.where(CouponTemplateRow.code.in_(list(template_codes)))
    return [
        cid for cid, issued, template in session.execute(query)  # keyed template:key:member
        if (issued or "").startswith(f"{template}:{key}:")
        and (issued or "").endswith(f":{member_id}")
    ]  # fmt: skip


def shared_code(uow: UnitOfWork, *, template_code: str) -> CouponRead:
    """The one public code of a shared-code template (made on first ask)."""

    def run(session: Session) -> CouponRead:
        row = template_row(session, template_code)
        t = CouponTemplate.model_validate(row.definition)
        if not t.shared_code:
            raise ValidationFailed("this template issues codes per member", field="template")
        key = f"{template_code}:shared"
        coupon = session.scalar(select(Coupon).where(Coupon.issue_key == key))
        if coupon is None:
            coupon = _new_coupon(session, row.id, t, member_id=None, issue_key=key, now=clock.now())
            coupon.max_uses = t.max_redemptions or UNLIMITED
        return coupon_read(coupon, row)

    return uow.run(run)


def _new_coupon(
    session: Session, template_id: int, t: CouponTemplate, *, member_id: int | None,
    issue_key: str, now: datetime,
) -> Coupon:  # fmt: skip
    until = t.ends_for(now)
    coupon = Coupon(
        code=new_code(), template_id=template_id, member_id=member_id, issue_key=issue_key,
        status="active", uses=0, max_uses=1, valid_from=t.valid_from, valid_until=until,
        issued_at=now,
    )  # fmt: skip
    session.add(coupon)
    session.flush()
    return coupon


def take_budget(session: Session, template_id: int, counter: str) -> bool:
    """Move a budget counter by one if the cap allows, atomically (two tills, one last coupon)."""
    t = CouponTemplateRow
    column, cap = {"issued": (t.issued, t.max_issued), "redeemed": (t.redeemed, t.max_redemptions)}[
        counter
    ]
    result = session.execute(
        update(t)
        .where(t.id == template_id, (cap.is_(None)) | (column < cap))
        .values({column: column + 1})
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def coupon_read(
    c: Coupon, template: CouponTemplateRow, t: CouponTemplate | None = None
) -> CouponRead:  # fmt: skip
    """`t`: the template's definition parsed, when the caller has it (a batch parses once)."""
    t = t or CouponTemplate.model_validate(template.definition)
    now = clock.now()
    return CouponRead(
        code=c.code, template=template.code, name=t.name, member_id=c.member_id,
        status=c.status, state=rules.state(_state(c, template), now), uses=c.uses,
        max_uses=c.max_uses, valid_from=c.valid_from, valid_until=c.valid_until,
        issued_at=c.issued_at, terms=terms_of(t), open_now=rules.open_at(t, now),
    )  # fmt: skip


CAPPED = frozenset({"percent_off", "nth_item"})  # the kinds max_discount caps (and 每滿)


def terms_of(t: CouponTemplate) -> CouponTerms:
    """What using a coupon of the template asks, by name."""
    return CouponTerms(
        min_spend=max(t.min_spend, t.spend or Decimal(0)) or None,
        every=t.spend if t.repeat else None,
        max_discount=t.max_discount if t.kind in CAPPED or t.repeat else None,
        steps=list(t.ladder) if t.steps else None, min_items=t.min_items,
        categories=t.categories, excluded_categories=t.excluded_categories,
        channels=t.channels, stores=t.stores, weekdays=t.weekdays, hours=t.hours,
        timezone=t.timezone, min_level=t.min_level, first_order_only=t.first_order_only,
        with_level_price=t.with_level_price,
    )  # fmt: skip


def _state(c: Coupon, template: CouponTemplateRow) -> CouponState:
    """The coupon as the rules see it: a withdrawn template withdraws its coupons."""
    return CouponState(
        member_id=c.member_id, valid_from=c.valid_from, valid_until=c.valid_until,
        uses=c.uses, max_uses=c.max_uses, status=c.status if template.active else "void",
    )  # fmt: skip


# --- checking and redeeming -------------------------------------------------------------------


def basket_of(data: BasketIn, unit: Decimal = CENT) -> Basket:
    """The basket a coupon is checked or used on by itself: one an order could record."""
    within_an_order(((li.quantity, li.unit_price) for li in data.lines), data.shipping_fee,
                    field="basket.lines")  # fmt: skip
    return Basket(
        unit=unit,
        channel=data.channel.value,
        store=data.store,
        lines=tuple(
            BasketLine(li.sku, li.category, li.quantity, li.unit_price, li.discount)
            for li in data.lines
        ),
        shipping_fee=data.shipping_fee,
    )


def holder_of(session: Session, member_id: int, order_id: int | None) -> rules.Holder:
    """The member's level and whether they have a counted order before `order_id` (the sale
    being recorded), in any channel."""
    from omo.tiers import service as tiers  # tiers gives coupons: it imports this module

    p = tiers.programme_in_force(session)
    level = tiers.level_of(session, member_id=member_id).code
    earlier = select(Order.id).where(
        Order.member_id == member_id, Order.status.in_(COUNTED_STATUSES)
    )
    if order_id is not None:
        earlier = earlier.where(Order.id != order_id)
    return rules.Holder(
        level, frozenset(lv.code for lv in p.levels[: p.rank(level) + 1]),
        session.scalar(earlier.limit(1)) is not None,
    )  # fmt: skip


def _price(
    session: Session, coupon: Coupon, basket: Basket, member_id: int | None, now: datetime,
    order_id: int | None = None,
) -> tuple[CouponTemplateRow, CouponTemplate, rules.Priced | rules.Refused]:  # fmt: skip
    """The coupon's template (its row and its parsed definition) and what it is worth;
    `order_id`: the sale being recorded, which is not an earlier order."""
    row = session.get(CouponTemplateRow, coupon.template_id)
    assert row is not None
    t = CouponTemplate.model_validate(row.definition)
    left = None if row.max_redemptions is None else row.max_redemptions - row.redeemed
    holder = (
        holder_of(session, member_id, order_id) if t.asks_of_member and member_id is not None
        else None
    )  # fmt: skip
    result = rules.price(t, _state(coupon, row), basket, member_id=member_id, now=now,
                         redemptions_left=left, holder=holder)  # fmt: skip
    if isinstance(result, Priced) and coupon.member_id is None and member_id is not None:
        used = session.scalar(
            select(func.count()).where(
                CouponRedemption.coupon_id == coupon.id,
                CouponRedemption.member_id == member_id,
                CouponRedemption.reversed_at.is_(None),
            )
        )
        if used:
            return row, t, rules.Refused("already_used", "you have used this code already")
    return row, t, result


_TRIED = "omo.coupons.tried"  # session.info: coupons priced, never written (tried_on)


def tried_on(
    session: Session, row: CouponTemplateRow, t: CouponTemplate, *, member_id: int,
    now: datetime,
) -> str:  # fmt: skip
    """A coupon of the template as the member would hold it once claimed, for pricing a basket
    in this (read) session only: it is never written, and price_in_order finds it under the
    code returned, which no coupon has (issued and imported codes are ASCII)."""
    code = f"領取:{row.code}"
    session.info.setdefault(_TRIED, {})[normalise_code(code)] = Coupon(
        code=code, template_id=row.id, member_id=member_id, status="active", uses=0,
        max_uses=1, valid_from=t.valid_from, valid_until=t.ends_for(now), issued_at=now,
    )  # fmt: skip
    return code


def price_in_order(
    session: Session, *, code: str, basket: Basket, member_id: int | None, now: datetime,
    applied: Sequence[rules.InOrder],
) -> tuple[rules.InOrder | None, rules.Priced | rules.Refused]:  # fmt: skip
    """What one code is worth on a basket (checkout's quote), after the coupons `applied`
    before it in the same order: what the next one's stacking rules need to know of it, and
    its price or why it is refused."""
    key = normalise_code(code)
    coupon = session.info.get(_TRIED, {}).get(key) or session.scalar(
        select(Coupon).where(Coupon.code == key)
    )
    if coupon is None:
        return None, rules.Refused("not_found", "no such coupon code")
    row, t, result = _price(session, coupon, basket, member_id, now)
    if isinstance(result, Priced):
        result = rules.stacking(t, row.code, applied, basket) or result
    return rules.InOrder(row.code, t.combinable, t.with_level_price), result


def find_coupon(session: Session, code: str) -> Coupon:
    coupon = session.scalar(select(Coupon).where(Coupon.code == normalise_code(code)))
    if coupon is None:
        raise NotFound("no such coupon code", field="code")
    return coupon


def check(
    uow: UnitOfWork, *, code: str, basket: BasketIn, member_id: int | None, unit: Decimal = CENT
) -> CouponCheck:
    """What the coupon would take off the basket now (`unit`: Settings.price_unit), or why
    not."""
    with uow.read() as session:
        coupon = find_coupon(session, code)
        member = members.current_member(session, member_id).id if member_id else None
        _, t, result = _price(session, coupon, basket_of(basket, unit), member, clock.now())
        return _check_read(coupon.code, result, terms_of(t))


def _check_read(code: str, result: rules.Priced | rules.Refused, terms: CouponTerms) -> CouponCheck:
    if isinstance(result, rules.Refused):
        return CouponCheck(
            code=code, usable=False, reason=result.reason, message=result.message,
            ctx=dict(result.ctx), discount=Decimal(0), shipping_discount=Decimal(0), free_sku=None,
            terms=terms,
        )  # fmt: skip
    return CouponCheck(
        code=code, usable=True, reason=None, message=None, discount=result.discount,
        shipping_discount=result.shipping_discount, free_sku=result.free_sku, terms=terms,
    )  # fmt: skip


def redeem_in(
    session: Session, *, code: str, basket: Basket, member_id: int | None, key: str,
    order_id: int | None, now: datetime, max_discount: Decimal | None = None,
) -> CouponRedemption:  # fmt: skip
    """Use a coupon (checkout calls this inside its transaction). A retry with the key returns
    the first redemption; a code is used at most once however many tills scan it at once: the
    use is a conditional UPDATE that only one transaction can win. `max_discount`: what the
    basket had room for after earlier coupons (checkout), so the cost recorded is the cost given."""
    held = session.scalar(select(CouponRedemption).where(CouponRedemption.redemption_key == key))
    coupon = find_coupon(session, code)
    if held is not None:
        if held.coupon_id != coupon.id:
            raise Conflict(
                f"redemption key {key!r} was used for another coupon", field="idempotency_key",
                ctx={"redemption_key": key},
            )  # fmt: skip
        return held
    row, _, result = _price(session, coupon, basket, member_id, now, order_id)
    if isinstance(result, rules.Refused):
        raise CouponRefused(result.reason, result.message, result.ctx)
    won = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.status == "active", Coupon.uses < Coupon.max_uses)
        .values(uses=Coupon.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if not getattr(won, "rowcount", 0):
        raise CouponRefused("already_used", "this coupon has just been used")
    if not take_budget(session, row.id, "redeemed"):
        raise CouponRefused("budget_exhausted", "this offer has run out")
    redemption = CouponRedemption(
        coupon_id=coupon.id, member_id=member_id, order_id=order_id, redemption_key=key,
        discount=result.discount if max_discount is None else min(result.discount, max_discount),
        shipping_discount=result.shipping_discount, redeemed_at=now,
    )  # fmt: skip
    session.add(redemption)
    session.flush()
    return redemption


def redeem(
    uow: UnitOfWork, *, code: str, basket: BasketIn, member_id: int | None, key: str,
    unit: Decimal = CENT,
) -> RedemptionRead:  # fmt: skip
    def run(session: Session) -> RedemptionRead:
        member = members.current_member(session, member_id).id if member_id else None
        r = redeem_in(session, code=code, basket=basket_of(basket, unit), member_id=member, key=key,
                      order_id=None, now=clock.now())  # fmt: skip
        return _redemption_read(session, r)

    return uow.run(run)


def reverse_in(session: Session, *, key: str, now: datetime) -> CouponRedemption:
    """Undo a redemption (a refund): the coupon can be used again if its template says so.
    Two reversals at once reverse it once: the conditional UPDATE on reversed_at decides, and
    the counters move in SQL, never by read-modify-write against a concurrent redemption."""
    r = session.scalar(select(CouponRedemption).where(CouponRedemption.redemption_key == key))
    if r is None:
        raise NotFound(
            f"no redemption with key {key!r}", field="redemption_key", ctx={"redemption_key": key}
        )
    won = session.execute(
        update(CouponRedemption)
        .where(CouponRedemption.id == r.id, CouponRedemption.reversed_at.is_(None))
        .values(reversed_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(won, "rowcount", 0):
        coupon = session.get(Coupon, r.coupon_id)
        assert coupon is not None
        row = session.get(CouponTemplateRow, coupon.template_id)
        assert row is not None
        if CouponTemplate.model_validate(row.definition).restore_on_refund:
            session.execute(
                update(Coupon)
                .where(Coupon.id == coupon.id)
                .values(uses=Coupon.uses - 1)
                .execution_options(synchronize_session=False)
            )
            session.execute(
                update(CouponTemplateRow)
                .where(CouponTemplateRow.id == row.id)
                .values(redeemed=CouponTemplateRow.redeemed - 1)
                .execution_options(synchronize_session=False)
            )
    session.flush()
    session.expire_all()
    refreshed = session.get(CouponRedemption, r.id)
    assert refreshed is not None
    return refreshed


def used_on_order(session: Session, *, order_id: int) -> list[tuple[Decimal, CouponTemplate]]:
    """The discount each coupon took off an order's goods, with its template."""
    rows = session.execute(
        select(CouponRedemption.discount, CouponTemplateRow.definition)
        .join(Coupon, Coupon.id == CouponRedemption.coupon_id)
        .join(CouponTemplateRow, CouponTemplateRow.id == Coupon.template_id)
        .where(CouponRedemption.order_id == order_id)
        .order_by(CouponRedemption.id)
    )
    return [(discount, CouponTemplate.model_validate(d)) for discount, d in rows]


def open_on_order(session: Session, *, order_id: int) -> list[tuple[str, CouponTemplate]]:
    """The redemptions on an order not yet reversed (their keys), with their templates."""
    rows = session.execute(
        select(CouponRedemption.redemption_key, CouponTemplateRow.definition)
        .join(Coupon, Coupon.id == CouponRedemption.coupon_id)
        .join(CouponTemplateRow, CouponTemplateRow.id == Coupon.template_id)
        .where(CouponRedemption.order_id == order_id, CouponRedemption.reversed_at.is_(None))
        .order_by(CouponRedemption.id)
    )
    return [(key, CouponTemplate.model_validate(d)) for key, d in rows]


def reverse_for_order(session: Session, *, order_id: int, now: datetime) -> int:
    """Undo the redemptions made on an order (a whole refund); returns how many."""
    keys = list(
        session.scalars(
            select(CouponRedemption.redemption_key).where(
                CouponRedemption.order_id == order_id, CouponRedemption.reversed_at.is_(None)
            )
        )
    )
    for key in keys:
        reverse_in(session, key=key, now=now)
    return len(keys)


def reverse(uow: UnitOfWork, *, key: str) -> RedemptionRead:
    def run(session: Session) -> RedemptionRead:
        return _redemption_read(session, reverse_in(session, key=key, now=clock.now()))

    return uow.run(run)


def _redemption_read(session: Session, r: CouponRedemption) -> RedemptionRead:
    coupon = session.get(Coupon, r.coupon_id)
    assert coupon is not None
    return RedemptionRead(
        code=coupon.code, redemption_key=r.redemption_key, member_id=r.member_id,
        order_id=r.order_id, discount=r.discount, shipping_discount=r.shipping_discount,
        redeemed_at=r.redeemed_at, reversed_at=r.reversed_at,
    )  # fmt: skip


def member_coupons(uow: UnitOfWork, *, member_id: int) -> list[CouponRead]:
    with uow.read() as session:
        member = members.current_member(session, member_id)
        rows = session.execute(
            select(Coupon, CouponTemplateRow)
            .join(CouponTemplateRow, CouponTemplateRow.id == Coupon.template_id)
            .where(Coupon.member_id == member.id)
            .order_by(Coupon.issued_at.desc(), Coupon.id.desc())
        )
        parsed: dict[int, CouponTemplate] = {}  # each template once, however many it issued
        return [coupon_read(c, row, parsed.get(row.id) or parsed.setdefault(
            row.id, CouponTemplate.model_validate(row.definition))) for c, row in rows]  # fmt: skip


def usable_held(session: Session, *, member_id: int, now: datetime) -> list[str]:
    """The codes of the member's coupons usable now, those ending soonest first."""
    member = members.current_member(session, member_id)
    rows = session.execute(
        select(Coupon, CouponTemplateRow)
        .join(CouponTemplateRow, CouponTemplateRow.id == Coupon.template_id)
        .where(Coupon.member_id == member.id, Coupon.status == "active")
    )
    usable = [(c.valid_until, c.code) for c, t in rows
              if rules.state(_state(c, t), now) == "usable"]  # fmt: skip
    usable.sort(key=lambda u: (u[0] is None, u[0] or now, u[1]))
    return [code for _, code in usable]


def get_coupon(uow: UnitOfWork, *, code: str) -> CouponRead:
    with uow.read() as session:
        coupon = find_coupon(session, code)
        row = session.get(CouponTemplateRow, coupon.template_id)
        assert row is not None
        return coupon_read(coupon, row)


def qr_png(code: str, *, scale: int = 6) -> bytes:
    """The code as a QR image for tills to scan (error correction M: survives a scuffed phone)."""
    out = io.BytesIO()
    segno.make(normalise_code(code), error="m").save(out, kind="png", scale=scale, border=2)
    return out.getvalue()


@dataclass(frozen=True)
class PeriodCoupons:
    issued: int  # coupons issued in the period
    used: int  # of them, those redeemed (and not reversed) by `until`
    redemptions: int  # redemptions made in the period, not reversed by `until`
    discount: Decimal  # what those redemptions took off (goods and shipping)


def period_coupons(session: Session, *, since: datetime, until: datetime) -> PeriodCoupons:
    """Issue and redemption counts of [since, until) as they stood at `until` (KPIs)."""
    r = CouponRedemption
    standing = (r.redeemed_at < until) & (r.reversed_at.is_(None) | (r.reversed_at >= until))
    issued, used = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(case((Coupon.id.in_(select(r.coupon_id).where(standing)), 1), else_=0)),
                0,
            ),
        ).where(Coupon.issued_at >= since, Coupon.issued_at < until)
    ).one()
    count, goods, shipping = session.execute(
        select(func.count(), money_sum(r.discount), money_sum(r.shipping_discount)).where(
            standing, r.redeemed_at >= since
        )
    ).one()
    return PeriodCoupons(
        issued=int(issued), used=int(used), redemptions=int(count), discount=goods + shipping
    )


def redemptions_on_orders(*, since: datetime, until: datetime) -> Any:
    """(template, order_id, discount_cents) of every redemption on an order made in
    [since, until) and not reversed: coupon discounts by template, for the caller to add up."""
    r = CouponRedemption
    return (
        select(
            CouponTemplateRow.code.label("template"),
            r.order_id,
            (
                type_coerce(r.discount, BigInteger) + type_coerce(r.shipping_discount, BigInteger)
            ).label("discount_cents"),
        )
        .join(Coupon, Coupon.id == r.coupon_id)
        .join(CouponTemplateRow, CouponTemplateRow.id == Coupon.template_id)
        .where(
            r.order_id.is_not(None),
            r.reversed_at.is_(None),
            r.redeemed_at >= since,
            r.redeemed_at < until,
        )
    )


def kpis(uow: UnitOfWork) -> list[TemplateKpis]:
    """Per template: issued → redeemed, the discount given and the revenue it came with."""
    with uow.read() as session:
        cost = dict(
            (tid, int(c))
            for tid, c in session.execute(
                select(
                    Coupon.template_id,
                    func.coalesce(
                        func.sum(
                            type_coerce(CouponRedemption.discount, BigInteger)
                            + type_coerce(CouponRedemption.shipping_discount, BigInteger)
                        ),
                        0,
                    ),
                )
                .join(CouponRedemption, CouponRedemption.coupon_id == Coupon.id)
                .where(CouponRedemption.reversed_at.is_(None))
                .group_by(Coupon.template_id)
            )
        )
        revenue = dict(
            (tid, int(c))
            for tid, c in session.execute(
                select(
                    Coupon.template_id,
                    func.coalesce(func.sum(type_coerce(Order.total, BigInteger)), 0),
                )
                .join(CouponRedemption, CouponRedemption.coupon_id == Coupon.id)
                .join(Order, Order.id == CouponRedemption.order_id)
                .where(CouponRedemption.reversed_at.is_(None))
                .group_by(Coupon.template_id)
            )
        )
        out = []
        for row in session.scalars(select(CouponTemplateRow).order_by(CouponTemplateRow.code)):
            t = CouponTemplate.model_validate(row.definition)
            out.append(
                TemplateKpis(
                    code=row.code, name=t.name, issued=row.issued, redeemed=row.redeemed,
                    redemption_rate=round(row.redeemed / row.issued, 4) if row.issued else 0.0,
                    discount_cost=Decimal(cost.get(row.id, 0)) / 100,
                    order_revenue=Decimal(revenue.get(row.id, 0)) / 100,
                )
            )  # fmt: skip
        return out


def check_counters(session: Session) -> list[str]:
    """Differences between coupon and template counters and the redemptions behind them."""
    problems: list[str] = []
    live: dict[int, int] = defaultdict(int)
    every: dict[int, int] = defaultdict(int)
    for coupon_id, reversed_at in session.execute(
        select(CouponRedemption.coupon_id, CouponRedemption.reversed_at)
    ):
        every[coupon_id] += 1
        live[coupon_id] += reversed_at is None
    uses: dict[int, int] = defaultdict(int)
    issued: dict[int, int] = defaultdict(int)
    for c in session.scalars(select(Coupon)):
        uses[c.template_id] += c.uses
        issued[c.template_id] += c.member_id is not None
        if not live[c.id] <= c.uses <= every[c.id] or c.uses > c.max_uses:
            problems.append(
                f"coupon {c.code}: uses {c.uses} of {c.max_uses}, redemptions {live[c.id]} live "
                f"of {every[c.id]}"
            )
    for t in session.scalars(select(CouponTemplateRow)):
        if t.redeemed != uses[t.id] or t.issued != issued[t.id]:
            problems.append(
                f"template {t.code}: counters issued {t.issued} redeemed {t.redeemed}, coupons "
                f"say {issued[t.id]} and {uses[t.id]}"
            )
    return problems


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {
        "coupons": rows_of(session, Coupon, Coupon.member_id, member_ids),
        "coupon_redemptions": rows_of(
            session, CouponRedemption, CouponRedemption.member_id, member_ids
        ),
    }
