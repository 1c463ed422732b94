"""領券中心: the coupons members claim themselves.

A template marked `claimable` is offered to each member who may still claim one: the time to
claim (its claim_until, else its valid_until) not past, the template active, the member below
its per-member limit and at its min_level or above, its budget not given out. A claim issues one
coupon under the member's idempotency key, so a retry or a second tap gets the same coupon; the
member is held meanwhile, and the issue counts what the member holds only once it holds the
template (as every issue does), so that two taps under two keys, or a tap and a batch to a
segment, cannot pass the per-member limit together; the budget is taken by the conditional
UPDATE every issue takes it by. A refusal says why in fixed words, by code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omo.coupons import service as coupons
from omo.coupons.models import Coupon, CouponTemplateRow
from omo.coupons.rules import CouponTemplate
from omo.coupons.schemas import ClaimableRead, CouponRead
from omo.db import UnitOfWork
from omo.members import service as members
from omo.shared import clock
from omo.shared.errors import Conflict, DomainError, Forbidden, ValidationFailed


def claimable(uow: UnitOfWork, *, member_id: int) -> list[ClaimableRead]:
    """What the member may claim now, those whose time to claim ends soonest first."""
    with uow.read() as session:
        member = members.current_member(session, member_id).id
        return [read for read, _, _ in offered(session, member_id=member, now=clock.now())]


def offered(
    session: Session, *, member_id: int, now: datetime
) -> list[tuple[ClaimableRead, CouponTemplateRow, CouponTemplate]]:  # fmt: skip
    """claimable() in the caller's session, for a member who is not merged, with each
    template's row and definition (checkout prices them on a basket)."""
    held, reaches = _held(session, member_id), _levels(session, member_id)
    found = []
    for row, t in _claimable_templates(session):
        if _refusal(row, t, reaches, held.get(row.id, 0), now) is None:
            read = ClaimableRead(
                template=row.code, name=t.name, terms=coupons.terms_of(t),
                held=held.get(row.id, 0), per_member_limit=t.per_member_limit,
                claim_until=_until(t), left=_left(row),
            )  # fmt: skip
            found.append((read, row, t))
    found.sort(key=lambda f: (f[0].claim_until is None, f[0].claim_until or now, f[0].template))
    return found


def claim(uow: UnitOfWork, *, member_id: int, template_code: str, key: str) -> CouponRead:
    """Issue the member one coupon of a claimable template (at most once per key)."""

    def run(session: Session) -> CouponRead:
        member = members.current_member(session, member_id).id
        members.hold_members(session, [member])  # two taps take turns at the limit
        row = coupons.template_row(session, template_code)
        t = CouponTemplate.model_validate(row.definition)
        issue_key = f"claim:{key}"
        again = session.scalar(
            select(Coupon).where(
                Coupon.issue_key == coupons.issue_key_of(row.code, issue_key, member)
            )
        )
        if again is not None:  # a retry: the coupon it got, whatever has changed since
            return coupons.coupon_read(again, row, t)
        have = _held(session, member).get(row.id, 0)
        refused = _refusal(row, t, _levels(session, member), have, clock.now())
        if refused is not None:
            raise refused
        result = coupons.issue_in(session, template_code=row.code, member_ids=[member],
                                  key=issue_key)  # fmt: skip
        if not result.issued:  # the budget went between the look and the take
            raise _refused(result.refused.get(member, "budget_exhausted"))
        return result.issued[0]

    return uow.run(run)


def _claimable_templates(session: Session) -> list[tuple[CouponTemplateRow, CouponTemplate]]:
    rows = session.scalars(select(CouponTemplateRow).where(CouponTemplateRow.active))
    parsed = [(row, CouponTemplate.model_validate(row.definition)) for row in rows]
    return [(row, t) for row, t in parsed if t.claimable]


def _held(session: Session, member_id: int) -> dict[int, int]:
    """The member's coupons per template id."""
    return dict(
        session.execute(
            select(Coupon.template_id, func.count())
            .where(Coupon.member_id == member_id)
            .group_by(Coupon.template_id)
        ).all()
    )


def _until(t: CouponTemplate) -> datetime | None:
    return t.claim_until or t.valid_until


def _left(row: CouponTemplateRow) -> int | None:
    return None if row.max_issued is None else max(row.max_issued - row.issued, 0)


# why a claim is refused: the error, in fixed words (the card says them in its language)
_REFUSALS: dict[str, tuple[type[DomainError], str]] = {
    "not_claimable": (ValidationFailed, "this coupon is not offered to claim"),
    "claim_closed": (Conflict, "the time to claim this coupon is over"),
    "per_member_limit": (Conflict, "you hold as many of this coupon as one member may"),
    "budget_exhausted": (Conflict, "all of these coupons have been given out"),
    "tier_too_low": (Forbidden, "this coupon is for a higher level"),
}


_OTHERWISE: tuple[type[DomainError], str] = (Conflict, "this coupon cannot be claimed now")


def _refused(code: str) -> DomainError:
    error, message = _REFUSALS.get(code, _OTHERWISE)
    return error(message, field="template", code=code)


def _levels(session: Session, member_id: int) -> Callable[[], frozenset[str]]:
    """The level codes the member reaches, read once and only if a template asks (a tier's
    programme and the member's level are two reads)."""
    return functools.cache(lambda: coupons.holder_of(session, member_id, None).reaches)


def _refusal(
    row: CouponTemplateRow, t: CouponTemplate, reaches: Callable[[], frozenset[str]], held: int,
    now: datetime,
) -> DomainError | None:  # fmt: skip
    """Why the member may not claim one now, or None; `reaches`: the levels they reach."""
    until = _until(t)
    if not t.claimable or not row.active:
        return _refused("not_claimable")
    if until is not None and now >= until:
        return _refused("claim_closed")
    if held >= t.per_member_limit:
        return _refused("per_member_limit")
    if _left(row) == 0:
        return _refused("budget_exhausted")
    if t.min_level is not None and t.min_level not in reaches():
        return _refused("tier_too_low")
    return None
