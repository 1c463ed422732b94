"""The points ledger rolled forward (點數負債變動表): for each day or month of the brand's
calendar, the points outstanding at its start, what was earned, given, adjusted, paid with,
given back, taken back and expired in it, and what was outstanding at its end — the figures a
finance team books the points liability from, month by month.

Each row holds by construction (every entry is one of the columns):
closing = opening + earned + bonus + adjusted_in − adjusted_out − redeemed + given_back
− taken_back − expired; and the last closing is the ledger's sum, which the members' balances
equal (check_ledger). One pass over the entries of the range, bucketed by instants worked out
here in the brand's zone, so SQLite and PostgreSQL count alike."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from omo.db import UnitOfWork
from omo.points.models import PointsEntry
from omo.points.service import rules_in_force
from omo.shared import clock
from omo.shared.errors import ValidationFailed
from omo.shared.money import CENT
from omo.shared.schemas import MoneyOut, ReadModel
from omo.shared.zones import start_of_day

Period = Literal["day", "month"]
MAX_ROWS = 400  # a year and a month of days, or 33 years of months

# each entry's column: (kind, sign) → column; a kind not here is an error in the ledger
_COLUMNS = {
    ("earn", 1): "earned",
    ("bonus", 1): "bonus",
    ("adjust", 1): "adjusted_in",
    ("adjust", -1): "adjusted_out",
    ("redeem", -1): "redeemed",
    ("reverse", 1): "given_back",  # spent points put back into their lots by a refund
    ("refund", 1): "given_back",  # partial refunds before 12-06 credited a lot of their own
    ("reverse", -1): "taken_back",  # earned points a return took back
    ("expire", -1): "expired",
}
_IN = ("earned", "bonus", "adjusted_in", "given_back")


class MovementRow(ReadModel):
    start: date = Field(description="the period's first day (the brand's calendar)")
    end: date = Field(description="the day after its last")
    opening: int = Field(description="points outstanding (available and pending) at its start")
    earned: int = Field(description="earned by orders")
    bonus: int = Field(description="sign-up, review, referral and journey bonuses")
    adjusted_in: int = Field(description="added by hand or by an import of opening balances")
    adjusted_out: int = Field(description="removed by hand")
    redeemed: int = Field(description="paid with: at checkout, for rewards, by the API")
    given_back: int = Field(
        description="points paid with that a refund or a cancelled redemption gave back"
    )
    taken_back: int = Field(description="earned points that returns took back")
    expired: int
    closing: int = Field(description="opening + the ins − the outs: outstanding at its end")


class Movements(ReadModel):
    time_zone: str
    by: Period
    point_value: MoneyOut = Field(description="NT$ a point pays for now (the programme's)")
    rows: list[MovementRow]
    total: MovementRow = Field(description="the whole range as one period")
    opening_liability: MoneyOut = Field(description="total.opening × point_value")
    closing_liability: MoneyOut = Field(description="total.closing × point_value")


def movements(uow: UnitOfWork, *, start: date, end: date, by: Period, time_zone: str) -> Movements:
    """Rows for [start, end) of the brand's calendar, a day or a month each; a month row
    starts on `start`'s day of the month only if `start` is the 1st (else the first row is
    the rest of that month)."""
    zone = check_range(start, end, time_zone)
    bounds = _bounds(start, end, by)
    if len(bounds) - 1 > MAX_ROWS:
        raise ValidationFailed(
            f"{len(bounds) - 1} rows: at most {MAX_ROWS} (ask by month, or a shorter range)",
            field="by",
        )
    instants = [start_of_day(d, zone) for d in bounds]
    with uow.read() as session:
        opening = _held_before(session, instants[0])
        sums = _sums(session, instants)
        value = rules_in_force(session).point_value
    rows: list[MovementRow] = []
    held = opening
    for n in range(len(bounds) - 1):
        row = _row(bounds[n], bounds[n + 1], held, sums[n])
        rows.append(row)
        held = row.closing
    together: dict[str, int] = defaultdict(int)
    for cols in sums.values():
        for name, points in cols.items():
            together[name] += points
    total = _row(bounds[0], bounds[-1], opening, together)
    return Movements(
        time_zone=time_zone, by=by, point_value=value, rows=rows, total=total,
        opening_liability=(value * total.opening).quantize(CENT),
        closing_liability=(value * total.closing).quantize(CENT),
    )  # fmt: skip


def check_range(start: date, end: date, time_zone: str) -> ZoneInfo:
    """[start, end) of the brand's calendar, from 2000 to the end of today; its zone."""
    zone = ZoneInfo(time_zone)
    tomorrow = clock.now().astimezone(zone).date() + dt.timedelta(days=1)
    if end <= start:
        raise ValidationFailed("to must come after from", field="to")
    if end > tomorrow:
        raise ValidationFailed(
            f"to: at most tomorrow ({tomorrow.isoformat()}), the end of today", field="to"
        )
    if start < date(2000, 1, 1):
        raise ValidationFailed("from: 2000-01-01 or later", field="from")
    return zone


def _bounds(start: date, end: date, by: Period) -> list[date]:
    days = [start]
    while days[-1] < end:
        d = days[-1]
        if by == "day":
            nxt = d + dt.timedelta(days=1)
        else:
            nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        days.append(min(nxt, end))
        if len(days) > MAX_ROWS + 2:
            break  # refused by the caller; no need to count further
    return days


def _held_before(session: Session, at: datetime) -> int:
    held = session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(PointsEntry.created_at < at)
    )
    return int(held or 0)


def _sums(session: Session, instants: list[datetime]) -> dict[int, dict[str, int]]:
    """Per period (by its index), the points of each column."""
    bucket = _bucket(instants, 0, len(instants) - 1)
    sign = case((PointsEntry.points > 0, literal(1)), else_=literal(-1))
    entries = (
        select(bucket.label("n"), PointsEntry.kind, sign.label("s"), PointsEntry.points)
        .where(PointsEntry.created_at >= instants[0], PointsEntry.created_at < instants[-1])
        .subquery()
    )
    rows = session.execute(
        select(entries.c.n, entries.c.kind, entries.c.s, func.sum(entries.c.points)).group_by(
            entries.c.n, entries.c.kind, entries.c.s
        )
    ).all()
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for n, kind, s, points in rows:
        column = _COLUMNS.get((kind, int(s)))
        if column is None:  # a kind this report does not know: say so, never drop it
            raise ValueError(f"points ledger: no column for a {kind} entry of sign {s}")
        out[int(n)][column] += abs(int(points))
    return out


def _bucket(instants: list[datetime], lo: int, hi: int) -> Any:
    """The period [instants[n], instants[n + 1]) an entry of [instants[lo], instants[hi]) falls
    in, as nested CASEs halving the range: a row meets log2(periods) comparisons, not one per
    period (a year of days: 9, not 365)."""
    if hi - lo == 1:
        return literal(lo)
    mid = (lo + hi) // 2
    return case(
        (PointsEntry.created_at < instants[mid], _bucket(instants, lo, mid)),
        else_=_bucket(instants, mid, hi),
    )


def _row(start: date, end: date, opening: int, cols: dict[str, int]) -> MovementRow:
    values = {name: cols.get(name, 0) for name in set(_COLUMNS.values())}
    ins = sum(values[name] for name in _IN)
    outs = sum(v for name, v in values.items() if name not in _IN)
    return MovementRow(start=start, end=end, opening=opening, closing=opening + ins - outs,
                       **values)  # fmt: skip


CSV_COLUMNS = ("start", "end", "opening", "earned", "bonus", "adjusted_in", "given_back",
               "adjusted_out", "redeemed", "taken_back", "expired", "closing")  # fmt: skip


def as_csv(m: Movements) -> str:
    """The rows and the total as CSV (ins before outs, as a roll-forward reads), the liability
    at both ends last: for a spreadsheet."""
    out = [",".join(CSV_COLUMNS)]
    for row in [*m.rows, m.total]:
        out.append(",".join(str(getattr(row, c)) for c in CSV_COLUMNS))
    out.append(f"point_value,{m.point_value:.2f}")
    out.append(f"opening_liability,{m.opening_liability}")
    out.append(f"closing_liability,{m.closing_liability}")
    return "\r\n".join(out) + "\r\n"
