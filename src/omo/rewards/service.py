"""Use cases of the rewards area (PTS-2): the catalogue, redeeming a reward with points, and
cancelling a redemption.

A redemption is one transaction: it holds the member (so their per-member count and balance
cannot move underneath it), takes the stock by a conditional UPDATE (two tills never take the
last one twice), spends the points first to expire first through the ledger, and records the
redemption under the till's idempotency key. A refusal names its reason and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.commerce import service as commerce
from omo.coupons.service import new_code
from omo.db import UnitOfWork
from omo.members import service as members
from omo.messaging import outbox
from omo.points import ledger
from omo.points.models import PointsEntry
from omo.rewards.models import Reward, RewardRedemption, RewardStockMove
from omo.rewards.schemas import (
    REWARD_CODE,
    RedemptionRead,
    RedemptionRow,
    RewardIn,
    RewardRead,
    RewardRedeem,
    StockChange,
    StockRead,
)
from omo.shared import clock
from omo.shared.errors import Conflict, NotFound, ValidationFailed
from omo.shared.money import CENT, off_unit
from omo.shared.rows import plain
from omo.tiers import service as tiers
from omo.tiers.policy import TierProgramme


class RewardRefused(ValidationFailed):
    def __init__(self, reason: str, message: str, ctx: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, field="code", code=reason, ctx=ctx)


# --- the catalogue -----------------------------------------------------------------------------


def put_reward(
    uow: UnitOfWork, *, code: str, data: RewardIn, actor: str | None, unit: Decimal = CENT
) -> tuple[RewardRead, bool]:
    """Create or change a reward. `stock` is what is left to give from now on. Its cash is a
    whole number of the till's `unit` (Settings.price_unit), else it is refused."""

    if not re.fullmatch(REWARD_CODE, code):
        raise ValidationFailed("a code of 1–40 letters, digits, _ or -", field="code")
    if (found := off_unit({"cash": data.cash}, unit)) is not None:
        raise ValidationFailed(
            f"{found[1]} is not a whole number of the price unit {unit}", field="cash",
            ctx={"amount": str(found[1]), "unit": str(unit)},
        )  # fmt: skip

    def run(session: Session) -> tuple[RewardRead, bool]:
        now = clock.now()
        if data.min_level is not None:
            tiers.known_level(session, data.min_level, field="min_level")
        row = session.scalar(select(Reward).where(Reward.code == code))
        created = row is None
        if row is None:
            row = Reward(code=code, created_at=now)
            session.add(row)
        for name, value in data.model_dump().items():
            setattr(row, name, value)
        row.updated_at = now
        session.flush()
        audit.record(
            session, actor=actor, action="reward.put", target=f"reward:{code}",
            detail={"created": created, "points": data.points, "stock": data.stock},
        )  # fmt: skip
        return _reward_read(session, row), created

    return uow.run(run)


def list_rewards(uow: UnitOfWork, *, available: bool) -> list[RewardRead]:
    """The catalogue by code; `available`: only what can be redeemed now."""
    with uow.read() as session:
        stmt = select(Reward).order_by(Reward.code)
        if available:
            now = clock.now()
            stmt = stmt.where(
                Reward.active.is_(True),
                or_(Reward.valid_from.is_(None), Reward.valid_from <= now),
                or_(Reward.valid_until.is_(None), Reward.valid_until > now),
                or_(Reward.stock.is_(None), Reward.stock > 0),
            )
        rows = list(session.scalars(stmt))
        out = dict(
            session.execute(  # units out of every reward, in one statement
                select(RewardRedemption.reward_id, func.sum(RewardRedemption.quantity))
                .where(RewardRedemption.status == "redeemed")
                .group_by(RewardRedemption.reward_id)
            ).all()
        )
        return [_reward_read(session, r, redeemed=int(out.get(r.id) or 0)) for r in rows]


def on_offer(uow: UnitOfWork, *, member_id: int, limit: int) -> list[tuple[RewardRead, bool]]:
    """What the member may redeem now at their level, each with whether their points reach
    it: those they reach first, then the cheapest (the member card, the till)."""
    with uow.read() as session:
        mid = members.current_member_id(session, member_id)
        p = tiers.programme_in_force(session)
        level = tiers.level_of(session, member_id=mid).code
        balance = ledger.balance(session, member_id=mid, now=clock.now()).available
    offered = [
        (r, r.points <= balance)
        for r in list_rewards(uow, available=True)
        if _level_allows(p, level, r.min_level)
    ]
    offered.sort(key=lambda o: (not o[1], o[0].points, o[0].code))
    return offered[:limit]


def get_reward(uow: UnitOfWork, *, code: str) -> RewardRead:
    with uow.read() as session:
        return _reward_read(session, _reward(session, code))


def change_stock(
    uow: UnitOfWork, *, code: str, change: StockChange, actor: str | None
) -> StockRead:
    """Add units to what is left (or write some off) in one UPDATE, so a redemption made at
    the same moment is never lost the way a new absolute figure would lose it. Once per
    idempotency key; the stock never goes below zero."""

    def run(session: Session) -> StockRead:
        reward = _reward(session, code)
        done = session.scalar(
            select(RewardStockMove).where(RewardStockMove.idempotency_key == change.idempotency_key)
        )
        if done is not None:
            if (done.reward_id, done.units) != (reward.id, change.units):
                raise Conflict("this idempotency key was used for another stock change",
                               field="idempotency_key")  # fmt: skip
            return StockRead(reward=code, units=done.units, stock=done.stock_after, replayed=True)
        if reward.stock is None:
            raise ValidationFailed(f"{code} has no stock count (unlimited); give it one with PUT",
                                   field="units", code="stock_unlimited",
                                   ctx={"reward": code})  # fmt: skip
        after = session.scalar(
            update(Reward)
            .where(Reward.id == reward.id, Reward.stock + change.units >= 0)
            .values(stock=Reward.stock + change.units)
            .returning(Reward.stock)
            .execution_options(synchronize_session=False)
        )
        if after is None:
            session.refresh(reward)
            raise ValidationFailed(
                f"{code}: {reward.stock} left, cannot write off {-change.units}",
                field="units", code="stock_below_zero",
                ctx={"reward": code, "stock": reward.stock, "units": -change.units},
            )  # fmt: skip
        now = clock.now()
        session.add(RewardStockMove(
            reward_id=reward.id, idempotency_key=change.idempotency_key, units=change.units,
            stock_after=after, reason=change.reason, actor=actor, created_at=now,
        ))  # fmt: skip
        session.flush()
        audit.record(
            session, actor=actor, action="reward.stock", target=f"reward:{code}",
            detail={"units": change.units, "stock": after, "reason": change.reason},
        )  # fmt: skip
        return StockRead(reward=code, units=change.units, stock=after, replayed=False)

    return uow.run(run)


# --- redeeming and cancelling ------------------------------------------------------------------


def redeem(
    uow: UnitOfWork, *, member_id: int, code: str, req: RewardRedeem, actor: str | None
) -> RedemptionRead:
    def run(session: Session) -> RedemptionRead:
        now = clock.now()
        mid = members.current_member_id(session, member_id, hold=True)
        held = _by_key(session, req.idempotency_key)
        if held is not None:
            return _replayed(session, held, mid, code, req, now)
        reward = _reward(session, code)
        if req.handed_over and reward.kind == "partner":
            raise ValidationFailed("a partner's voucher is used at the partner, not handed over",
                                   field="handed_over")  # fmt: skip
        _check(session, reward, mid, req.quantity, now)
        if req.store:
            commerce.store_by_code(session, req.store)
        if not _take_stock(session, reward.id, req.quantity):
            raise RewardRefused("out_of_stock", f"{code}: not enough left ({req.quantity} asked)",
                                {"reward": code, "quantity": req.quantity})  # fmt: skip
        cost = reward.points * req.quantity
        cash = reward.cash * req.quantity if reward.cash is not None else None
        entry = ledger.debit(
            session, member_id=mid, kind="redeem", points=cost,
            key=f"reward:{req.idempotency_key}", now=now,
            take_from=ledger.lots(session, member_id=mid, now=now, pending=False),
            reason=f"reward {code} × {req.quantity}", actor=actor,
        )  # fmt: skip
        row = RewardRedemption(
            reward_id=reward.id, entry_id=entry.id, idempotency_key=req.idempotency_key,
            quantity=req.quantity, points=cost, cash=cash, status="redeemed", actor=actor,
            created_at=now,
            channel=req.channel.value if req.channel else None, store=req.store,
            voucher=new_code() if reward.kind == "partner" else None,
        )  # fmt: skip
        if req.handed_over:
            row.fulfilled_at, row.fulfilled_store, row.fulfilled_by = now, req.store, actor
        session.add(row)
        session.flush()
        outbox.publish(
            session, topic="RewardRedeemed", key=f"reward:{req.idempotency_key}", now=now,
            payload={"member_id": mid, "reward": code, "kind": reward.kind,
                     "partner": reward.partner, "quantity": req.quantity, "points": cost,
                     "cash": str(cash) if cash is not None else None,
                     "channel": row.channel, "store": row.store,
                     "handed_over": req.handed_over},
        )  # fmt: skip
        return _redemption_read(session, row, reward, mid, now, replayed=False)

    return uow.run(run)


def cancel(
    uow: UnitOfWork, *, idempotency_key: str, actor: str | None, returned: bool = False
) -> RedemptionRead:
    """Give a redemption back: its points to the lots they came from, its units to the stock.
    One already handed over needs `returned` (the reward came back); a partner's voucher once
    used cannot be. Cancelling again changes nothing."""

    def run(session: Session) -> RedemptionRead:
        now = clock.now()
        row, entry, reward = held_redemption(session, idempotency_key)
        if row.status == "cancelled":
            return _redemption_read(session, row, reward, entry.member_id, now, replayed=True)
        if row.fulfilled_at is not None:
            moment = clock.as_utc(row.fulfilled_at).isoformat()
            if row.voucher is not None:
                raise RewardRefused(
                    "voucher_used", f"{row.voucher} was used at the partner on "
                    f"{row.fulfilled_at:%Y-%m-%d}; it cannot come back",
                    {"voucher": row.voucher, "used_at": moment},
                )  # fmt: skip
            if not returned:
                raise RewardRefused("already_fulfilled", f"{reward.code} was handed over on "
                                    f"{row.fulfilled_at:%Y-%m-%d}: cancel it with returned "
                                    "once it is back",
                                    {"reward": reward.code, "moment": moment})  # fmt: skip
        ledger.give_back(session, debit=entry, key=f"cancel:{entry.id}", now=now,
                         reason=f"reward {reward.code} cancelled", actor=actor)  # fmt: skip
        session.execute(
            update(Reward)
            .where(Reward.id == reward.id, Reward.stock.is_not(None))
            .values(stock=Reward.stock + row.quantity)
            .execution_options(synchronize_session=False)
        )
        row.status, row.cancelled_at = "cancelled", now
        session.flush()
        outbox.publish(
            session, topic="RewardCancelled", key=f"reward-cancel:{idempotency_key}", now=now,
            payload={"member_id": entry.member_id, "reward": reward.code,
                     "quantity": row.quantity, "points": row.points, "returned": returned},
        )  # fmt: skip
        return _redemption_read(session, row, reward, entry.member_id, now, replayed=False)

    return uow.run(run)


def redemptions_of(uow: UnitOfWork, *, member_id: int, limit: int) -> list[RedemptionRead]:
    """A member's redemptions, newest first (those of members merged into it included)."""
    with uow.read() as session:
        mid = members.current_member_id(session, member_id)
        now = clock.now()
        found = session.execute(
            select(RewardRedemption, Reward)
            .join(Reward, Reward.id == RewardRedemption.reward_id)
            .join(PointsEntry, PointsEntry.id == RewardRedemption.entry_id)
            .where(PointsEntry.member_id == mid)
            .order_by(RewardRedemption.id.desc())
            .limit(limit)
        ).all()
        available = ledger.balance(session, member_id=mid, now=now).available
        return [_read(row, reward, mid, available, replayed=False) for row, reward in found]


def erase(session: Session, *, member_ids: Sequence[int]) -> None:
    """A sent reward's tracking note may hold an address or a phone: it goes."""
    entries = select(PointsEntry.id).where(PointsEntry.member_id.in_(list(member_ids)))
    session.execute(
        update(RewardRedemption)
        .where(RewardRedemption.entry_id.in_(entries.scalar_subquery()),
               RewardRedemption.reference.is_not(None))
        .values(reference=None)
    )  # fmt: skip


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    if not member_ids:
        return {"reward_redemptions": []}
    names = [c.key for c in RewardRedemption.__table__.columns]
    found = session.scalars(
        select(RewardRedemption)
        .join(PointsEntry, PointsEntry.id == RewardRedemption.entry_id)
        .where(PointsEntry.member_id.in_(list(member_ids)))
        .order_by(RewardRedemption.id)
    )
    return {"reward_redemptions": [{n: plain(getattr(r, n)) for n in names} for r in found]}


def check_redemptions(session: Session) -> list[str]:
    """Differences between redemptions and the ledger: a redemption whose points entry is not
    a debit of its points, a cancelled one without its give-back (or a give-back without the
    cancellation), one handed over after it was cancelled, a stock below zero (`omo check`)."""
    problems: list[str] = []
    given_back = set(
        session.scalars(
            select(PointsEntry.idempotency_key).where(PointsEntry.idempotency_key.like("cancel:%"))
        )
    )
    found = session.execute(
        select(RewardRedemption, PointsEntry.kind, PointsEntry.points).join(
            PointsEntry, PointsEntry.id == RewardRedemption.entry_id
        )
    )
    for row, kind, pts in found:
        if kind != "redeem" or pts != -row.points:
            problems.append(f"reward redemption {row.idempotency_key}: {row.points} points, "
                            f"its entry {row.entry_id} is {kind} {pts}")  # fmt: skip
        if (row.status == "cancelled") != (f"cancel:{row.entry_id}" in given_back):
            problems.append(f"reward redemption {row.idempotency_key}: {row.status}, points "
                            f"{'not ' if row.status == 'cancelled' else ''}given back")  # fmt: skip
        if row.cancelled_at and row.fulfilled_at and row.fulfilled_at > row.cancelled_at:
            problems.append(f"reward redemption {row.idempotency_key}: handed over after it "
                            "was cancelled")  # fmt: skip
    for code, stock in session.execute(select(Reward.code, Reward.stock).where(Reward.stock < 0)):
        problems.append(f"reward {code}: stock {stock}")
    return problems


def held_redemption(
    session: Session, idempotency_key: str
) -> tuple[RewardRedemption, PointsEntry, Reward]:
    """A redemption by its key, read again once its member is held: cancelling, fulfilling
    and redeeming one member's rewards take turns on that hold."""
    row = _by_key(session, idempotency_key)
    if row is None:
        raise NotFound(f"no reward redemption with key {idempotency_key!r}",
                       field="idempotency_key", ctx={"key": idempotency_key})  # fmt: skip
    entry = session.get(PointsEntry, row.entry_id)
    assert entry is not None  # a foreign key
    holder = None
    while holder != entry.member_id:  # a merge may move the entry while we wait for the hold
        holder = entry.member_id
        members.hold_members(session, [holder])
        session.refresh(entry)
    session.refresh(row)  # as it is now that the member is held
    reward = session.get(Reward, row.reward_id)
    assert reward is not None
    return row, entry, reward


def redemption_read(
    session: Session, row: RewardRedemption, reward: Reward, member_id: int, *, replayed: bool
) -> RedemptionRead:
    return _redemption_read(session, row, reward, member_id, clock.now(), replayed=replayed)


# --- inside ------------------------------------------------------------------------------------


def _reward(session: Session, code: str) -> Reward:
    row = session.scalar(select(Reward).where(Reward.code == code))
    if row is None:
        raise NotFound(f"no reward {code!r}", field="code", ctx={"reward": code})
    return row


def _by_key(session: Session, key: str) -> RewardRedemption | None:
    return session.scalar(select(RewardRedemption).where(RewardRedemption.idempotency_key == key))


def _check(session: Session, reward: Reward, member_id: int, quantity: int, now: datetime) -> None:
    """Why this member cannot have `quantity` of the reward now, as a refusal; else nothing."""
    code = reward.code
    if not reward.active:
        raise RewardRefused("reward_inactive", f"{code} is not offered", {"reward": code})
    starts = reward.valid_from
    if starts is not None and now < starts and not _early(session, reward, member_id, now):
        raise RewardRefused(
            "reward_not_yet", f"{code} is offered from {starts:%Y-%m-%d}",
            {"reward": code, "moment": clock.as_utc(starts).isoformat()},
        )  # fmt: skip
    if reward.valid_until is not None and now >= reward.valid_until:
        raise RewardRefused(
            "reward_ended", f"{code} was offered until {reward.valid_until:%Y-%m-%d}",
            {"reward": code, "moment": clock.as_utc(reward.valid_until).isoformat()},
        )  # fmt: skip
    if reward.min_level is not None:
        p = tiers.programme_in_force(session)
        level = tiers.level_of(session, member_id=member_id).code
        if not _level_allows(p, level, reward.min_level):
            raise RewardRefused(
                "tier_too_low", f"{code} is for {reward.min_level} and above ({level} now)",
                {"reward": code, "level": reward.min_level, "now": level},
            )  # fmt: skip
    if reward.per_member is not None:
        held = _units_out(session, reward.id, member_id)
        if held + quantity > reward.per_member:
            raise RewardRefused(
                "over_member_limit",
                f"{code}: at most {reward.per_member} a member ({held} redeemed)",
                {"reward": code, "limit": reward.per_member, "held": held},
            )


def _level_allows(p: TierProgramme, level: str, min_level: str | None) -> bool:
    """Whether a member on `level` may have a reward for `min_level` and above; a level the
    programme no longer has admits no one (the catalogue should be mended, not guessed at)."""
    if min_level is None:
        return True
    if min_level not in {lv.code for lv in p.levels}:
        return False
    return p.rank(level) >= p.rank(min_level)


def _early(session: Session, reward: Reward, member_id: int, now: datetime) -> bool:
    """Whether the member's level has early access and the reward's early days have come."""
    if not reward.early_access_days or reward.valid_from is None:
        return False
    if now < reward.valid_from - timedelta(days=reward.early_access_days):
        return False
    return tiers.level_of(session, member_id=member_id).benefits.early_access


def _units_out(session: Session, reward_id: int, member_id: int | None) -> int:
    """Units of the reward redeemed and not cancelled: by everyone, or by one member."""
    stmt = select(func.coalesce(func.sum(RewardRedemption.quantity), 0)).where(
        RewardRedemption.reward_id == reward_id, RewardRedemption.status == "redeemed"
    )
    if member_id is not None:
        stmt = stmt.join(PointsEntry, PointsEntry.id == RewardRedemption.entry_id).where(
            PointsEntry.member_id == member_id
        )
    return int(session.scalar(stmt) or 0)


def _take_stock(session: Session, reward_id: int, quantity: int) -> bool:
    """Take `quantity` units if that many are left (unlimited stock always has them)."""
    done = session.execute(
        update(Reward)
        .where(Reward.id == reward_id, or_(Reward.stock.is_(None), Reward.stock >= quantity))
        .values(stock=Reward.stock - quantity)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def _replayed(
    session: Session,
    held: RewardRedemption,
    member_id: int,
    code: str,
    req: RewardRedeem,
    now: datetime,
) -> RedemptionRead:
    """A retry of a redemption already made: the same answer, or a conflict if the key was
    used for something else."""
    entry = session.get(PointsEntry, held.entry_id)
    reward = session.get(Reward, held.reward_id)
    assert entry is not None and reward is not None
    if (entry.member_id, reward.code, held.quantity) != (member_id, code, req.quantity):
        raise Conflict(
            "this idempotency key was used for another redemption", field="idempotency_key"
        )
    return _redemption_read(session, held, reward, member_id, now, replayed=True)


def _redemption_read(
    session: Session, row: RewardRedemption, reward: Reward, member_id: int, now: datetime, *,
    replayed: bool,
) -> RedemptionRead:  # fmt: skip
    available = ledger.balance(session, member_id=member_id, now=now).available
    return _read(row, reward, member_id, available, replayed=replayed)


def _read(
    row: RewardRedemption, reward: Reward, member_id: int, available: int, *, replayed: bool
) -> RedemptionRead:
    return RedemptionRead(
        **row_of(row, reward, member_id).model_dump(), points_available=available,
        replayed=replayed,
    )  # fmt: skip


def row_of(row: RewardRedemption, reward: Reward, member_id: int) -> RedemptionRow:
    return RedemptionRow(
        idempotency_key=row.idempotency_key, reward=reward.code, name=reward.name,
        kind=reward.kind, partner=reward.partner, member_id=member_id,
        quantity=row.quantity, points=row.points, cash=row.cash, status=row.status,
        channel=row.channel,
        store=row.store, created_at=row.created_at, cancelled_at=row.cancelled_at,
        voucher=row.voucher, fulfilled_at=row.fulfilled_at,
        fulfilled_store=row.fulfilled_store, reference=row.reference,
    )  # fmt: skip


def _reward_read(session: Session, row: Reward, *, redeemed: int | None = None) -> RewardRead:
    """`redeemed`: the units out, when the caller has counted them already."""
    return RewardRead(
        code=row.code, name=row.name, kind=row.kind, partner=row.partner, points=row.points,
        cash=row.cash, stock=row.stock, per_member=row.per_member, min_level=row.min_level,
        valid_from=row.valid_from, valid_until=row.valid_until,
        early_access_days=row.early_access_days, active=row.active,
        redeemed=_units_out(session, row.id, None) if redeemed is None else redeemed,
        updated_at=row.updated_at,
    )  # fmt: skip
