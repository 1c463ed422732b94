"""Opening balances: the points members bring from the programme before this one (`omo import
points`). Each is one lot in the ledger — an `adjust` credit, so that it counts toward no tier's
earned points — with the expiry it had there, so that what expires when carries over and
redemption still takes the soonest-to-expire first. Keyed by the previous system's reference:
importing the file again changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from omo.db import UnitOfWork
from omo.members import service as members
from omo.points import ledger
from omo.points.rules import PointsRules, expires_at
from omo.points.schemas import OpeningBalance
from omo.points.service import rules_in_force
from omo.shared import clock
from omo.shared.errors import Conflict

# a clock a little ahead on the old system's side is not "the future"
FUTURE_SLACK = timedelta(minutes=5)


def key_of(reference: str) -> str:
    return f"opening:{reference}"


@dataclass(frozen=True)
class Lot:
    points: int
    available_at: datetime
    expires_at: datetime | None
    reason: str


def lot_of(rules: PointsRules, item: OpeningBalance, now: datetime) -> Lot:
    """The lot an opening balance becomes: spendable from available_at (default now), expiring
    at expires_at (default: the programme's expiry counted from earned_at, else from now)."""
    earned = item.earned_at or now
    expiry = item.expires_at if item.expires_at is not None else expires_at(rules, earned)
    reason = item.reason or "opening balance"
    if item.earned_at is not None:
        local = item.earned_at.astimezone(ZoneInfo(rules.timezone)).date()
        reason = f"{reason} (earned {local.isoformat()})"
    return Lot(item.points, item.available_at or now, expiry, reason[:300])


def problems(
    session: Session, rules: PointsRules, item: OpeningBalance, member_id: int, now: datetime
) -> tuple[list[tuple[str, str]], bool]:
    """What is wrong with importing this balance for this member, as (field, reason) pairs,
    and whether it was imported before (as it is now: nothing to do, whatever the date)."""
    held = ledger.find(session, key_of(item.reference))
    if held is not None:
        same = (
            members.current_member(session, held.member_id).id
            == members.current_member(session, member_id).id
            and held.points == item.points
            and (item.expires_at is None or held.expires_at == item.expires_at)
        )
        if same:
            return [], True
        other = f"already imported with other content (ledger entry {held.id})"
        return [("reference", other)], True
    found: list[tuple[str, str]] = []
    if item.earned_at is not None and item.earned_at > now + FUTURE_SLACK:
        found.append(("earned_at", "lies in the future"))
    lot = lot_of(rules, item, now)
    if lot.expires_at is not None and lot.expires_at <= now:
        when = lot.expires_at.astimezone(ZoneInfo(rules.timezone)).isoformat(timespec="minutes")
        if item.expires_at is not None:
            found.append(("expires_at", f"these points expired at {when}"))
        else:
            by_rule = f"by the programme's expiry these points expired at {when}"
            found.append(("earned_at", f"{by_rule}; give expires_at to keep them"))
    return found, False


def open_balances(
    uow: UnitOfWork, *, items: Sequence[tuple[int, OpeningBalance]], actor: str | None
) -> tuple[int, int]:
    """Credit each member (by id) their opening balance, in one transaction; an imported
    reference is skipped (the same content) or refused (other content). Returns how many
    were credited and how many were there already."""

    def run(session: Session) -> tuple[int, int]:
        now = clock.now()
        rules = rules_in_force(session)
        roots = [members.current_member(session, member_id).id for member_id, _item in items]
        members.hold_members(session, sorted(set(roots)))
        created = unchanged = 0
        for root, (_member_id, item) in zip(roots, items, strict=True):
            key = key_of(item.reference)
            held = ledger.find(session, key)
            if held is not None:
                if (members.current_member(session, held.member_id).id, held.points) != (
                    root, item.points,
                ):  # fmt: skip
                    raise Conflict(f"opening balance {item.reference!r} was imported with "
                                   "other content", field="reference")  # fmt: skip
                unchanged += 1
                continue
            lot = lot_of(rules, item, now)
            ledger.credit(
                session, member_id=root, kind="adjust", points=lot.points, key=key,
                available_at=lot.available_at, expires_at=lot.expires_at, now=now,
                reason=lot.reason, actor=actor,
            )  # fmt: skip
            created += 1
        return created, unchanged

    return uow.run(run)
