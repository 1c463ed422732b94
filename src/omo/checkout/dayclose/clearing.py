"""Points cleared between stores (跨店點數清算): a franchise chain's stores issue points with
their sales and take them in payment at their tills, wherever the member earned them. Over a
period, each store's points issued (earned by its sales, less what returns took back) and used
(paid with at its till or for rewards handed over there, less what refunds and cancellations
gave back); net = used − issued, valued at the point value: what the chain's points pool owes
the store (or the store owes it, when negative). Bonuses, adjustments and expiry are the
chain's own, in the ledger's roll-forward (points/movements.py), not a store's."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from pydantic import Field
from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from omo.apikeys.service import Principal
from omo.commerce import service as commerce
from omo.commerce.models import Order
from omo.db import UnitOfWork
from omo.points.models import PointsEntry
from omo.points.movements import check_range
from omo.points.service import rules_in_force
from omo.rewards.models import RewardRedemption
from omo.shared.errors import Forbidden
from omo.shared.money import CENT
from omo.shared.schemas import MoneyOut, ReadModel
from omo.shared.zones import start_of_day


class StoreClearing(ReadModel):
    store: str | None = Field(description="the store's code; none: online, or sent by post")
    earned: int = Field(description="points its sales earned")
    taken_back: int = Field(description="of those, what returns took back")
    redeemed: int = Field(description="points paid with at its till, and for rewards there")
    given_back: int = Field(description="of those, what refunds and cancellations gave back")
    net: int = Field(description="(redeemed − given_back) − (earned − taken_back)")
    value: MoneyOut = Field(description="net × the point value: owed to the store if positive")


class Clearing(ReadModel):
    start: date
    end: date = Field(description="the day after the last")
    time_zone: str
    point_value: MoneyOut
    stores: list[StoreClearing]
    total: StoreClearing


def chain_period(
    start: date, end: date, time_zone: str, principal: Principal
) -> tuple[datetime, datetime]:  # fmt: skip
    """A clearing's period as UTC instants [start, end) of the brand's days; every store's
    figures, so a key bound to one store is refused."""
    if principal.store_id is not None:
        raise Forbidden("this API key is bound to a store: the clearing shows every store's",
                        code="wrong_store")  # fmt: skip
    zone = check_range(start, end, time_zone)
    return start_of_day(start, zone), start_of_day(end, zone)


def clearing(
    uow: UnitOfWork, *, start: date, end: date, time_zone: str, principal: Principal
) -> Clearing:
    since, until = chain_period(start, end, time_zone, principal)
    with uow.read() as session:
        stores = commerce.list_stores(session)
        sums = _sums(session, since, until, {s.code: s.id for s in stores})
        value = rules_in_force(session).point_value
        codes = {s.id: s.code for s in stores}
    rows = []
    for store_id in sorted(sums, key=lambda k: (k is None, codes.get(k) if k else "", k or 0)):
        rows.append(_row(codes.get(store_id) if store_id else None, sums[store_id], value))
    together: dict[str, int] = defaultdict(int)
    for cols in sums.values():
        for k, v in cols.items():
            together[k] += v
    return Clearing(start=start, end=end, time_zone=time_zone, point_value=value, stores=rows,
                    total=_row(None, together, value))  # fmt: skip


def _sums(
    session: Session, since: Any, until: Any, ids: dict[str, int]
) -> dict[int | None, dict[str, int]]:
    """Per store id, the points of each column over [since, until); a reward's points are the
    store's it was redeemed at (its code, matched to a store id)."""
    e, reward = PointsEntry, RewardRedemption
    column = case(
        (e.kind == "earn", literal("earned")),
        (and_(e.kind == "reverse", e.points < 0), literal("taken_back")),
        (e.kind == "redeem", literal("redeemed")),
        else_=literal("given_back"),  # reverse > 0, or a pre-12-06 "refund" lot
    )
    by_order = (
        select(Order.store_id, column, func.sum(e.points))
        .join(Order, Order.id == e.order_id)
        .where(e.created_at >= since, e.created_at < until,
               e.kind.in_(("earn", "redeem", "reverse", "refund")))
        .group_by(Order.store_id, column)
    )  # fmt: skip
    # a reward's redemption, or its cancellation (a reverse of that redemption's entry)
    redemption = case((e.kind == "redeem", e.id), else_=e.reverses_id)
    by_reward = (
        select(reward.store, column, func.sum(e.points))
        .join(reward, reward.entry_id == redemption)
        .where(e.created_at >= since, e.created_at < until, e.order_id.is_(None),
               or_(e.kind == "redeem", and_(e.kind == "reverse", e.points > 0)))
        .group_by(reward.store, column)
    )  # fmt: skip
    out: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for store_id, name, points in session.execute(by_order):
        out[store_id][name] += abs(int(points))
    for code, name, points in session.execute(by_reward):
        out[ids.get(code) if code else None][name] += abs(int(points))
    return out


def _row(code: str | None, cols: dict[str, int], value: Any) -> StoreClearing:
    earned, taken = cols.get("earned", 0), cols.get("taken_back", 0)
    redeemed, given = cols.get("redeemed", 0), cols.get("given_back", 0)
    net = (redeemed - given) - (earned - taken)
    return StoreClearing(store=code, earned=earned, taken_back=taken, redeemed=redeemed,
                         given_back=given, net=net, value=(value * net).quantize(CENT))  # fmt: skip


CSV_COLUMNS = ("store", "earned", "taken_back", "redeemed", "given_back", "net", "value")


def as_csv(c: Clearing) -> str:
    """The stores and the total as CSV, the point value last: for a spreadsheet."""
    out = [",".join(CSV_COLUMNS)]
    for row in [*c.stores, c.total]:
        store = "ALL" if row is c.total else (row.store or "")
        out.append(",".join([store, *(str(getattr(row, k)) for k in CSV_COLUMNS[1:])]))
    out.append(f"point_value,{c.point_value:.2f}")
    return "\r\n".join(out) + "\r\n"
