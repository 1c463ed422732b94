"""Coupons the programme before issued and nobody has used yet (`omo import coupons`): each
keeps its code — printed on a receipt, saved in a customer's app — so that it still works at
the till, as a coupon of one of this programme's templates (what it is worth, where it
applies). Bound to its member, or, with no member, a bearer code anyone may use once. It counts
toward the template's issue budget like any coupon given to a member; the template's
per-member limit is not applied (the old programme already gave them). Keyed by the code:
importing the file again changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.coupons.models import Coupon, CouponTemplateRow
from omo.coupons.rules import CouponTemplate
from omo.coupons.service import normalise_code, take_budget
from omo.db import UnitOfWork
from omo.members import service as members
from omo.members.schemas import IdentifierIn
from omo.shared import clock
from omo.shared.errors import Conflict, ValidationFailed
from omo.shared.schemas import MAX_ID, AwareDatetime, StrictModel


class ImportedCoupon(StrictModel):
    code: str = Field(min_length=4, max_length=20, pattern=r"^[\x21-\x7e]+$",
                      description="as the customer has it; read as a till reads it")  # fmt: skip
    template: str = Field(min_length=1, max_length=40, description="a template code here")
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=10)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = Field(
        default=None, description="default: the template's validity, counted from today"
    )

    @model_validator(mode="after")
    def _dates(self) -> ImportedCoupon:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until: must come after valid_from")
        return self

    @property
    def stored_code(self) -> str:
        return normalise_code(self.code)


def key_of(item: ImportedCoupon) -> str:
    return f"import:{item.stored_code}"


def problems(
    session: Session, item: ImportedCoupon, member_id: int | None, now: datetime
) -> tuple[list[tuple[str, str]], bool]:
    """What stands against importing this coupon, as (field, reason) pairs, and whether it was
    imported before as it is (nothing to do, whatever the date)."""
    row = session.scalar(select(CouponTemplateRow).where(CouponTemplateRow.code == item.template))
    if row is None:
        return [("template", f"no coupon template {item.template!r} (create it first)")], False
    held = session.scalar(select(Coupon).where(Coupon.code == item.stored_code))
    if held is not None:
        if held.issue_key == key_of(item) and (held.template_id, held.member_id) == (
            row.id, member_id,
        ):  # fmt: skip
            return [], True
        return [("code", f"the code {held.code} is already in use here")], False
    t = CouponTemplate.model_validate(row.definition)
    if t.shared_code:
        return [("template", "a shared-code template has one public code")], False
    until = valid_until(t, item, now)
    if until is not None and until <= now:
        return [("valid_until", "this coupon has expired")], False
    return [], False


def valid_until(t: CouponTemplate, item: ImportedCoupon, now: datetime) -> datetime | None:
    if item.valid_until is not None:
        return item.valid_until
    until = t.valid_until
    if t.valid_days is not None:
        rolling = now + timedelta(days=t.valid_days)
        until = min(until, rolling) if until else rolling
    return until


def budget_left(session: Session, template: str) -> int | None:
    """Member-bound coupons the template may still issue (None: no cap)."""
    row = session.scalar(select(CouponTemplateRow).where(CouponTemplateRow.code == template))
    if row is None or row.max_issued is None:
        return None
    return max(row.max_issued - row.issued, 0)


def import_coupons(
    uow: UnitOfWork, *, items: Sequence[tuple[int | None, ImportedCoupon]], actor: str | None
) -> tuple[int, int]:
    """Write the coupons (checked first with `problems`) in one transaction; returns how many
    were created and how many were there already."""

    def run(session: Session) -> tuple[int, int]:
        now = clock.now()
        created = unchanged = 0
        for given_id, item in items:
            # whom validation found, or whom they were merged into since
            member_id = members.current_member(session, given_id).id if given_id else None
            found, recorded = problems(session, item, member_id, now)
            if recorded:
                unchanged += 1
                continue
            for field, message in found:  # a till took the code meanwhile
                raise Conflict(message, field=field)
            row = session.scalar(
                select(CouponTemplateRow).where(CouponTemplateRow.code == item.template)
            )
            assert row is not None
            if member_id is not None and not take_budget(session, row.id, "issued"):
                raise ValidationFailed(f"template {item.template}: its issue budget is spent",
                                       field="template")  # fmt: skip
            t = CouponTemplate.model_validate(row.definition)
            session.add(Coupon(
                code=item.stored_code, template_id=row.id, member_id=member_id,
                issue_key=key_of(item), status="active", uses=0, max_uses=1,
                valid_from=item.valid_from or t.valid_from,
                valid_until=valid_until(t, item, now), issued_at=now,
            ))  # fmt: skip
            session.flush()
            created += 1
        if created:
            audit.record(session, actor=actor, action="coupons.import", target="coupons",
                         detail={"created": created})  # fmt: skip
        return created, unchanged

    return uow.run(run)
