"""The points ledger rolled forward by month and by day (SQLite + PostgreSQL): every entry in
its column and its period of the brand's calendar, the rows chained, the last closing the
ledger's sum and the members' balances, the liability at the point value."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from omo.apikeys.service import create_key
from omo.checkout.refunds import RefundRequest, refund
from omo.db import UnitOfWork
from omo.points import movements
from omo.points import service as points
from omo.points.models import PointsEntry
from omo.points.rules import PointsRules
from omo.points.schemas import PointsChange
from omo.shared import clock
from omo.shared.errors import ValidationFailed
from tests.factories import enrol, post_order

TPE = ZoneInfo("Asia/Taipei")
ZONE = "Asia/Taipei"
PHONE = "0912-345-678"


class Moment:
    def __init__(self, at: datetime) -> None:
        self.now = at
        clock.set_clock(lambda: self.now)


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TPE)


def change(key: str, n: int) -> PointsChange:
    return PointsChange(points=n, idempotency_key=key, reason="t")


@pytest.fixture
def ledger(uow: UnitOfWork) -> dict[str, Any]:
    """Oct–Dec 2026 in Taipei: a sign-up bonus, hand adjustments either side of midnight on
    the last of October, a sale's points, a redemption and its cancellation, the sale's
    refund, and expiry (one month after earning)."""
    m = Moment(at(10, 15))
    points.set_programme(uow, actor="t", rules=PointsRules(
        signup_bonus=100, expiry="rolling", expiry_months=1, point_value=Decimal("0.5")))  # fmt: skip
    mid = enrol(uow, phone=PHONE).member.id  # +100 bonus
    m.now = at(10, 31, 23, 59)  # 15:59 UTC: October in Taipei
    points.adjust(uow, member_id=mid, change=change("in", 500), actor="t")
    m.now = at(11, 1, 0, 1)  # 16:01 UTC on Oct 31: November in Taipei
    points.adjust(uow, member_id=mid, change=change("out", -50), actor="t")
    m.now = at(11, 5)
    sale = post_order(uow, customer=[{"kind": "phone", "value": PHONE}], ordered_at=m.now.isoformat(),
                      lines=[{"sku": "S", "quantity": 1, "unit_price": "3000"}])  # fmt: skip
    m.now = at(11, 10)
    points.redeem(uow, member_id=mid, change=change("r1", 200), actor="t")
    m.now = at(11, 12)
    points.cancel_redemption(uow, idempotency_key="r1", actor="t")
    m.now = at(11, 20)
    refund(uow, order_id=sale.id, req=RefundRequest(idempotency_key="back"), actor="t")
    m.now = at(11, 25)
    points.expire_due(uow)  # the sign-up bonus (Nov 15)
    m.now = at(12, 1)
    points.adjust(uow, member_id=mid, change=change("in2", 100), actor="t")
    m.now = at(12, 2)
    points.expire_due(uow)  # October's 500 less the 50 taken out (Nov 30)
    points.redeem(uow, member_id=mid, change=change("r2", 30), actor="t")
    m.now = at(12, 7)
    return {"member": mid}


def by_hand(uow: UnitOfWork, month: bool) -> dict[date, dict[str, int]]:
    """The oracle: each entry read back, its day in Taipei, its column by kind and sign."""
    names = {("earn", 1): "earned", ("bonus", 1): "bonus", ("adjust", 1): "adjusted_in",
             ("adjust", -1): "adjusted_out", ("redeem", -1): "redeemed",
             ("reverse", 1): "given_back", ("reverse", -1): "taken_back",
             ("expire", -1): "expired"}  # fmt: skip
    out: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with uow.read() as s:
        for e in s.scalars(select(PointsEntry)):
            day = e.created_at.astimezone(TPE).date()
            key = day.replace(day=1) if month else day
            out[key][names[(e.kind, 1 if e.points > 0 else -1)]] += abs(e.points)
    return out


COLUMNS = ("earned", "bonus", "adjusted_in", "adjusted_out", "redeemed", "given_back",
           "taken_back", "expired")  # fmt: skip


def test_each_month_rolls_into_the_next_and_ends_at_the_ledgers_sum(
    uow: UnitOfWork, ledger: dict[str, Any]
) -> None:
    got = movements.movements(uow, start=date(2026, 10, 1), end=date(2026, 12, 8), by="month",
                              time_zone=ZONE)  # fmt: skip
    assert [(r.start, r.end) for r in got.rows] == [
        (date(2026, 10, 1), date(2026, 11, 1)), (date(2026, 11, 1), date(2026, 12, 1)),
        (date(2026, 12, 1), date(2026, 12, 8)),
    ]  # fmt: skip
    october, november, december = got.rows
    assert (october.opening, october.bonus, october.adjusted_in, october.closing) == (
        0,
        100,
        500,
        600,
    )
    earned = november.earned
    assert earned > 0  # the NT$3,000 sale
    assert (november.adjusted_out, november.redeemed, november.given_back) == (50, 200, 200)
    # the refund took the sale's points back; the 50 taken out came off the sign-up bonus,
    # the lot expiring first, so 50 of it was left to expire on the 15th
    assert (november.taken_back, november.expired) == (earned, 50)
    assert november.opening == 600 and november.closing == 600 - 50 - 50
    # October's 500 expired on the 30th (booked on the 2nd); 100 given on the 1st, 30 paid with
    assert (december.adjusted_in, december.expired, december.redeemed) == (100, 500, 30)
    assert december.closing == 500 + 100 - 500 - 30
    oracle = by_hand(uow, month=True)
    for row in got.rows:
        assert {c: getattr(row, c) for c in COLUMNS} == {c: oracle[row.start][c] for c in COLUMNS}
    for before, after in zip(got.rows, got.rows[1:], strict=False):
        assert after.opening == before.closing
    balance = points.summary(uow, member_id=ledger["member"], history=0)
    assert got.total.closing == december.closing == balance.available + balance.pending
    assert got.total.opening == 0
    assert {c: getattr(got.total, c) for c in COLUMNS} == {
        c: sum(getattr(r, c) for r in got.rows) for c in COLUMNS
    }
    assert got.point_value == Decimal("0.5")
    assert got.closing_liability == Decimal(got.total.closing) * Decimal("0.5")


def test_by_day_each_entry_falls_on_its_day_in_the_brands_zone(
    uow: UnitOfWork, ledger: dict[str, Any]
) -> None:
    got = movements.movements(uow, start=date(2026, 10, 31), end=date(2026, 11, 2), by="day",
                              time_zone=ZONE)  # fmt: skip
    assert [(r.start, r.adjusted_in, r.adjusted_out) for r in got.rows] == [
        (date(2026, 10, 31), 500, 0), (date(2026, 11, 1), 0, 50),
    ]  # fmt: skip
    assert got.rows[0].opening == 100  # the sign-up bonus of the 15th
    # in UTC both adjustments fall on the 31st
    utc = movements.movements(uow, start=date(2026, 10, 31), end=date(2026, 11, 1), by="day",
                              time_zone="UTC")  # fmt: skip
    assert (utc.rows[0].adjusted_in, utc.rows[0].adjusted_out) == (500, 50)
    oracle = by_hand(uow, month=False)
    days = movements.movements(uow, start=date(2026, 10, 1), end=date(2026, 12, 8), by="day",
                               time_zone=ZONE)  # fmt: skip
    assert len(days.rows) == 31 + 30 + 7
    for row in days.rows:
        assert {c: getattr(row, c) for c in COLUMNS} == {c: oracle[row.start][c] for c in COLUMNS}
    # a month that starts mid-month runs to the end of it
    mid = movements.movements(uow, start=date(2026, 11, 20), end=date(2026, 12, 8), by="month",
                              time_zone=ZONE)  # fmt: skip
    assert [(r.start, r.end) for r in mid.rows] == [
        (date(2026, 11, 20), date(2026, 12, 1)), (date(2026, 12, 1), date(2026, 12, 8)),
    ]  # fmt: skip
    assert mid.rows[0].opening == days.rows[31 + 19].opening


def test_a_range_that_cannot_be_read_is_refused(uow: UnitOfWork, ledger: dict[str, Any]) -> None:
    for start, end, by, field in (
        (date(2026, 11, 1), date(2026, 11, 1), "day", "to"),
        (date(2026, 11, 1), date(2026, 12, 9), "day", "to"),  # past tomorrow
        (date(1999, 1, 1), date(2000, 1, 2), "month", "from"),
        (date(2024, 1, 1), date(2026, 1, 1), "day", "by"),  # 731 rows
    ):
        with pytest.raises(ValidationFailed) as info:
            movements.movements(uow, start=start, end=end, by=by, time_zone=ZONE)  # type: ignore[arg-type]
        assert info.value.field == field


def test_the_movements_api(uow: UnitOfWork, api: TestClient, ledger: dict[str, Any]) -> None:
    r = api.get("/api/v1/points/movements", params={"from": "2026-10-01", "to": "2026-12-08"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["by"] == "month" and len(body["rows"]) == 3
    assert body["rows"][0]["closing"] == 600 and body["point_value"] == "0.50"
    for params, where in (
        ({"from": "2026-10-01", "to": "2026-10-01"}, "to"),
        ({"from": "2026-10-01", "to": "2027-01-01"}, "to"),
        ({"from": "2026-10-01", "to": "2026-12-01", "by": "week"}, "by"),
        ({"from": "2026-02-30", "to": "2026-12-01"}, "from"),
        ({"to": "2026-12-01"}, "from"),
    ):
        bad = api.get("/api/v1/points/movements", params=params)
        assert bad.status_code == 422, (params, bad.text)
        assert bad.json()["detail"][0]["loc"][-1] == where, (params, bad.text)
    till = create_key(uow, name="till", store_code=None, scopes=["orders:write"]).key
    denied = api.get("/api/v1/points/movements", params={"from": "2026-10-01", "to": "2026-12-01"},
                     headers={"Authorization": f"Bearer {till}"})  # fmt: skip
    assert denied.status_code == 403
