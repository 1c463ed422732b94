"""Import, step 1, for what a brand brings from its loyalty programme before: opening points
balances and levels. Each row names one member who is there (by id, identifiers, or the
`member` an export wrote), found here and kept on the row (its member_id) for the write; then
the area says what else stands against it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from omo.coupons import imported
from omo.db import UnitOfWork
from omo.members import service as members
from omo.members.identifiers import Identifier
from omo.points import openings
from omo.points.service import rules_in_force
from omo.shared import clock
from omo.shared.errors import NotFound
from omo.tiers import grants
from omo.tiers.service import programme_in_force
from omo.transfer.results import Valid, chunks
from omo.transfer.shapes import MEMBER_REF, RowError

# what stands against one row, its member found: (field, reason) pairs, and whether it was
# imported before as it is
RowCheck = Callable[[Session, Valid, Any, datetime], tuple[list[tuple[str, str]], bool]]


def _checked(uow: UnitOfWork, valid: list[Valid], check: Callable[[Session], RowCheck],
             *, once: str | None = None, anyone: bool = False) -> list[RowError]:  # fmt: skip
    """Find each row's member, then run the area's check; `once`: the member may be on one
    row only (what a second row would mean is not clear); `anyone`: a row that names no one
    is for no one (a bearer coupon)."""
    errors: list[RowError] = []
    now = clock.now()
    first_row: dict[int, int] = {}
    with uow.read() as session:
        row_check = check(session)
        for chunk in chunks(valid, 2_000):
            refs = [v.member_ref for v in chunk if v.member_ref is not None]
            named = members.members_named_by(
                session, [*(i for v in chunk for i in v.idents), *refs]
            )
            for v in chunk:
                member: int | None = None
                if not (anyone and _names_no_one(v)):
                    member, problem = _member_of(session, v, named)
                    if problem is not None:
                        errors.append(problem)
                        continue
                v.model.member_id = member
                if (
                    once is not None
                    and member is not None
                    and (seen := first_row.setdefault(member, v.rows[0])) != v.rows[0]
                ):
                    errors.append(RowError(v.rows[0], once, f"the member is on row {seen} too"))
                    continue
                found, v.recorded = row_check(session, v, member, now)
                errors.extend(v.error(field, message) for field, message in found)
    return errors


def _names_no_one(v: Valid) -> bool:
    return v.model.member_id is None and not v.idents and v.member_ref is None


def _member_of(
    session: Session, v: Valid, named: dict[Identifier, int]
) -> tuple[int | None, RowError | None]:
    """The one member the row names, or the error that says why not."""
    m = v.model
    if m.member_id is None and not v.idents and v.member_ref is None:
        return None, v.error("member_id", "give member_id or an identifier of the member")
    whose = {named[i] for i in v.idents if i in named}
    where = (v.record.ident_columns or ["member_id"])[0]
    if v.member_ref is not None:  # `omo export`: whom it named there
        where = MEMBER_REF
        if v.member_ref in named:
            whose.add(named[v.member_ref])
    if m.member_id is not None:
        try:
            whose.add(members.current_member(session, m.member_id).id)
        except NotFound:
            return None, v.error("member_id", f"no member {m.member_id}")
        where = "member_id"
    if not whose:
        return None, RowError(v.rows[0], where, "names no member (import the members first)")
    if len(whose) > 1:
        listed = ", ".join(map(str, sorted(whose)))
        return None, RowError(v.rows[0], where, f"name more than one member: {listed}")
    return whose.pop(), None


def _openings(session: Session) -> RowCheck:
    rules = rules_in_force(session)
    return lambda s, v, member, now: openings.problems(s, rules, v.model, member, now)


def _levels(session: Session) -> RowCheck:
    p = programme_in_force(session)
    return lambda s, v, member, now: (grants.problems(s, p, v.model, member, now), False)


def _coupons(session: Session) -> RowCheck:
    return lambda s, v, member, now: imported.problems(s, v.model, member, now)


def check_coupons(uow: UnitOfWork, valid: list[Valid]) -> list[RowError]:
    """Each coupon, then each template's issue budget over the file's new member-bound ones."""
    errors = _checked(uow, valid, _coupons, anyone=True)
    bad = {e.row for e in errors}
    wanted: dict[str, list[Valid]] = defaultdict(list)
    for v in valid:
        if v.rows[0] not in bad and not v.recorded and v.model.member_id is not None:
            wanted[v.model.template].append(v)
    with uow.read() as session:
        for template, rows in wanted.items():
            left = imported.budget_left(session, template)
            if left is not None and len(rows) > left:
                spent = f"the template's issue budget has {left} left"
                errors.extend(v.error("template", spent) for v in rows[left:])
    return errors


def check_openings(uow: UnitOfWork, valid: list[Valid]) -> list[RowError]:
    return _checked(uow, valid, _openings)


def check_levels(uow: UnitOfWork, valid: list[Valid]) -> list[RowError]:
    return _checked(uow, valid, _levels, once="member_id")


LOYALTY_CHECKS: dict[str, Callable[[UnitOfWork, list[Valid]], list[RowError]]] = {
    "points": check_openings,
    "tiers": check_levels,
    "coupons": check_coupons,
}
