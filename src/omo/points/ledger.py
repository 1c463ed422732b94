"""Ledger primitives, inside the caller's transaction. Callers lock the member first
(members.hold_members), so two tills spending one member's points take turns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, bindparam, case, func, insert, or_, select
from sqlalchemy.orm import Session

from omo.points.models import PointsAllocation, PointsEntry
from omo.shared import sequences
from omo.shared.errors import Conflict, ValidationFailed
from omo.shared.prepared import Prepared
from omo.shared.untracked import untracked

CREDIT_KINDS = frozenset({"earn", "adjust", "bonus", "refund"})
# The most points one entry holds: the ledger's columns are PostgreSQL `integer`s. Every other
# way in is bounded far below (10,000,000 an adjustment or a redemption); what an order earns is
# not — a programme of a point per cent and its multipliers on a large order came to more, a 500
# on PostgreSQL and an entry SQLite kept.
MAX_ENTRY_POINTS = 2_000_000_000


class InsufficientPoints(ValidationFailed):
    def __init__(self, wanted: int, available: int, field: str = "points") -> None:
        super().__init__(
            f"{wanted} points wanted, {available} available",
            field=field,
            code="insufficient_points",
            ctx={"wanted": wanted, "available": available},
        )
        self.available = available


def within_an_entry(points: int, *, field: str | None = None) -> None:
    """Refuse more points at once than one entry holds (a sale's quote says so too, of its
    `lines`)."""
    if points > MAX_ENTRY_POINTS:
        raise ValidationFailed(
            f"{points} points at once: one entry of the ledger holds at most {MAX_ENTRY_POINTS}",
            field=field, code="too_many_points",
            ctx={"points": points, "max_entry": MAX_ENTRY_POINTS},
        )  # fmt: skip


def find(session: Session, key: str) -> PointsEntry | None:
    return session.scalar(select(PointsEntry).where(PointsEntry.idempotency_key == key))


def same_or_conflict(entry: PointsEntry, *, member_id: int, kind: str, points: int) -> PointsEntry:
    """A retry with the same key must ask for the same thing."""
    if (entry.member_id, entry.kind, abs(entry.points)) != (member_id, kind, abs(points)):
        raise Conflict(
            f"idempotency key {entry.idempotency_key!r} was used for another change",
            field="idempotency_key",
            ctx={"key": entry.idempotency_key},
        )
    return entry


def credit(
    session: Session,
    *,
    member_id: int,
    kind: str,
    points: int,
    key: str,
    available_at: datetime,
    expires_at: datetime | None,
    now: datetime,
    order_id: int | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> PointsEntry:
    if points <= 0 or kind not in CREDIT_KINDS:
        raise ValueError(f"a credit is a positive {sorted(CREDIT_KINDS)} entry")
    within_an_entry(points)
    values: dict[str, Any] = {
        "member_id": member_id, "kind": kind, "points": points, "idempotency_key": key,
        "order_id": order_id, "reverses_id": None, "reason": reason, "actor": actor,
        "created_at": now, "available_at": available_at, "expires_at": expires_at,
        "remaining": points,
    }  # fmt: skip
    # A prepared statement (every sale earns): the ORM's flush cost more than the INSERT. The
    # entry returned is not tracked; a later read in the transaction loads the row.
    values["id"] = sequences.next_id(session, _ENTRIES)
    if values["id"] is None:
        values["id"] = _INSERT_ENTRY.scalar(session, values)
    else:  # PostgreSQL: it goes with the transaction's next statement
        _INSERT_ENTRY_WITH_ID.execute_later(session, values)
    return untracked(PointsEntry, values)  # shared/untracked.py


_ENTRIES: sa.Table = PointsEntry.__table__  # type: ignore[assignment]
_INSERT_ENTRY = Prepared(insert(_ENTRIES).returning(_ENTRIES.c.id))
_INSERT_ENTRY_WITH_ID = Prepared(insert(_ENTRIES))


def entry_id_ahead(session: Session) -> None:
    """credit's id for a new entry, read ahead (shared/sequences.py)."""
    sequences.id_ahead(session, _ENTRIES)


def unexpired(now: datetime) -> ColumnElement[bool]:
    """Lots whose date has not come. Points past their date are worth nothing even before the
    expiry job writes them off: no balance counts them and nothing spends them."""
    return or_(PointsEntry.expires_at.is_(None), PointsEntry.expires_at > now)


def lots(
    session: Session, *, member_id: int, now: datetime, pending: bool, expired: bool = False
) -> list[PointsEntry]:
    """The member's lots with points left, first to expire first (pending ones last); those
    past their date only with `expired` (taking back what a refunded order earned)."""
    stmt = select(PointsEntry).where(PointsEntry.member_id == member_id, PointsEntry.remaining > 0)
    if not pending:
        stmt = stmt.where(PointsEntry.available_at <= now)
    if not expired:
        stmt = stmt.where(unexpired(now))
    rows = list(session.scalars(stmt))
    far = datetime.max.replace(tzinfo=now.tzinfo)
    rows.sort(
        key=lambda e: (
            e.available_at is not None and e.available_at > now,  # spendable ones first
            e.expires_at or far,
            e.available_at or far,
            e.id,
        )
    )
    return rows


def debit(
    session: Session,
    *,
    member_id: int,
    kind: str,
    points: int,
    key: str,
    now: datetime,
    take_from: list[PointsEntry],
    order_id: int | None = None,
    reverses_id: int | None = None,
    reason: str | None = None,
    actor: str | None = None,
    allow_short: bool = False,
) -> PointsEntry:
    """Take `points` from the lots in the order given; refuse if they do not hold enough
    (or, with allow_short, take what there is — refunds of points already spent)."""
    if points <= 0:
        raise ValueError("a debit takes a positive number of points")
    held = sum(lot.remaining for lot in take_from)
    if held < points and not allow_short:
        raise InsufficientPoints(points, held)
    taking = min(points, held)
    entry = PointsEntry(
        member_id=member_id, kind=kind, points=-taking, idempotency_key=key, order_id=order_id,
        reverses_id=reverses_id, reason=reason if taking == points else
        f"{reason or kind}: {points - taking} points could not be taken back (already spent)",
        actor=actor, created_at=now, remaining=0,
    )  # fmt: skip
    session.add(entry)
    session.flush()
    left = taking
    for lot in take_from:
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take == 0:
            continue
        lot.remaining -= take
        left -= take
        session.add(PointsAllocation(debit_id=entry.id, lot_id=lot.id, points=take))
    session.flush()
    return entry


def expiries_of(session: Session, lot_ids: Sequence[int]) -> dict[int, int]:
    """How many times each lot has expired already."""
    counts: dict[int, int] = {}
    for start in range(0, len(lot_ids), 500):
        rows = session.execute(
            select(PointsAllocation.lot_id, func.count())
            .join(PointsEntry, PointsEntry.id == PointsAllocation.debit_id)
            .where(PointsEntry.kind == "expire",
                   PointsAllocation.lot_id.in_(lot_ids[start : start + 500]))
            .group_by(PointsAllocation.lot_id)
        )  # fmt: skip
        counts.update({int(lot): int(n) for lot, n in rows})
    return counts


def give_back(
    session: Session,
    *,
    debit: PointsEntry,
    key: str,
    now: datetime,
    reason: str | None = None,
    actor: str | None = None,
) -> PointsEntry:
    """Undo a debit: its points return to the very lots they came from, dates unchanged."""
    allocations = list(
        session.scalars(select(PointsAllocation).where(PointsAllocation.debit_id == debit.id))
    )
    back = sum(a.points for a in allocations)
    entry = PointsEntry(
        member_id=debit.member_id, kind="reverse", points=back, idempotency_key=key,
        order_id=debit.order_id, reverses_id=debit.id, reason=reason, actor=actor,
        created_at=now, remaining=0,
    )  # fmt: skip
    session.add(entry)
    session.flush()
    for a in allocations:
        lot = session.get(PointsEntry, a.lot_id)
        assert lot is not None
        lot.remaining += a.points
        session.add(PointsAllocation(debit_id=entry.id, lot_id=a.lot_id, points=-a.points))
    session.flush()
    return entry


def give_back_part(
    session: Session,
    *,
    debits: Sequence[PointsEntry],
    points: int,
    key: str,
    now: datetime,
    reason: str | None = None,
    actor: str | None = None,
) -> int:
    """Return `points` of what `debits` took (and was not given back yet) to the very lots
    they came from, dates unchanged: the last taken first, so that parts given back one after
    another end as the whole given back at once. Points whose lot is past its date come back
    expired, as they would have. Each debit touched gets a reverse entry, keyed
    `{key}:{debit id}`. Returns the points given back."""
    by_id = {d.id: d for d in debits}
    still: dict[tuple[int, int], int] = {}  # (debit, lot) → points taken and not given back
    for debit_id, lot_id, n in session.execute(
        select(PointsAllocation.debit_id, PointsAllocation.lot_id, PointsAllocation.points)
        .where(PointsAllocation.debit_id.in_(by_id))
        .order_by(PointsAllocation.debit_id, PointsAllocation.id)
    ):  # fmt: skip
        still[debit_id, lot_id] = still.get((debit_id, lot_id), 0) + n
    for undone, lot_id, n in session.execute(
        select(PointsEntry.reverses_id, PointsAllocation.lot_id, PointsAllocation.points)
        .join(PointsEntry, PointsEntry.id == PointsAllocation.debit_id)
        .where(PointsEntry.kind == "reverse", PointsEntry.reverses_id.in_(by_id))
    ):  # fmt: skip
        if undone is not None:  # given back already: its allocations are negative
            still[undone, lot_id] = still.get((undone, lot_id), 0) + n
    plan: dict[int, list[tuple[int, int]]] = {}
    left = points
    for (debit_id, lot_id), n in reversed(still.items()):
        if left == 0:
            break
        take = min(n, left)
        if take > 0:
            plan.setdefault(debit_id, []).append((lot_id, take))
            left -= take
    for debit_id, parts in plan.items():
        debit = by_id[debit_id]
        entry = PointsEntry(
            member_id=debit.member_id, kind="reverse", points=sum(n for _, n in parts),
            idempotency_key=f"{key}:{debit_id}", order_id=debit.order_id, reverses_id=debit_id,
            reason=reason, actor=actor, created_at=now, remaining=0,
        )  # fmt: skip
        session.add(entry)
        session.flush()
        for lot_id, n in parts:
            lot = session.get(PointsEntry, lot_id)
            assert lot is not None
            lot.remaining += n
            session.add(PointsAllocation(debit_id=entry.id, lot_id=lot_id, points=-n))
    session.flush()
    return points - left


@dataclass(frozen=True)
class Balance:
    available: int
    pending: int

    @property
    def total(self) -> int:
        return self.available + self.pending


def balance_ahead(session: Session, *, member_id: int, now: datetime) -> None:
    """balance's read, read ahead (Prepared.ahead)."""
    _BALANCE.ahead(session, {"member": member_id, "now": now})


def balance(session: Session, *, member_id: int, now: datetime) -> Balance:
    available, pending = _BALANCE.first(session, {"member": member_id, "now": now}) or (0, 0)
    return Balance(available=int(available), pending=int(pending))


def _balance_statement() -> Any:
    """balance's SELECT, built once: every quote and sale reads a balance, and building the
    statement cost more than running it."""
    now = bindparam("now", type_=PointsEntry.__table__.c.available_at.type)
    ready = PointsEntry.available_at <= now
    return select(
        func.coalesce(func.sum(case((ready, PointsEntry.remaining), else_=0)), 0),
        func.coalesce(func.sum(case((ready, 0), else_=PointsEntry.remaining)), 0),
    ).where(
        PointsEntry.member_id == bindparam("member"),
        PointsEntry.remaining > 0,
        unexpired(now),  # type: ignore[arg-type]
    )


_BALANCE = Prepared(_balance_statement())


def ledger_sum(session: Session, *, member_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                PointsEntry.member_id == member_id
            )
        )
        or 0
    )
