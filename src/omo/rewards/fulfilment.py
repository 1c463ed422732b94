"""Rewards owed and given (PTS-2): a redemption is handed over at a store, sent in a parcel, or
— a partner's reward — its voucher used at the partner. Until then the merchant owes it, and
the list of what is owed is the back office's pick list.

Fulfilling holds the member, as redeeming and cancelling do, so a cancellation and a hand-over
of one redemption take turns: it is never both given back and given out. A second hand-over or
a voucher shown twice is refused with when and where it was used, and changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.commerce import service as commerce
from omo.coupons.service import normalise_code
from omo.db import UnitOfWork
from omo.members import service as members
from omo.messaging import outbox
from omo.points.models import PointsEntry
from omo.rewards.models import Reward, RewardRedemption
from omo.rewards.schemas import RedemptionFulfil, RedemptionRead, RedemptionRow
from omo.rewards.service import RewardRefused, held_redemption, redemption_read, row_of
from omo.shared import clock
from omo.shared.errors import NotFound


def fulfil(
    uow: UnitOfWork, *, idempotency_key: str, req: RedemptionFulfil, actor: str | None
) -> RedemptionRead:
    """Hand over or send a product, gift or service redemption."""
    return uow.run(lambda session: _fulfil(session, idempotency_key, req, actor, voucher=False))


def use_voucher(
    uow: UnitOfWork, *, voucher: str, req: RedemptionFulfil, actor: str | None
) -> RedemptionRead:
    """A partner honours a voucher: scanned or typed as the member shows it, used once."""
    code = normalise_code(voucher)

    def run(session: Session) -> RedemptionRead:
        key = session.scalar(
            select(RewardRedemption.idempotency_key).where(RewardRedemption.voucher == code)
        )
        if key is None:
            raise NotFound(f"no voucher {code!r}", field="voucher", ctx={"voucher": code})
        return _fulfil(session, key, req, actor, voucher=True)

    return uow.run(run)


def owed(
    uow: UnitOfWork, *, store: str | None, reward: str | None, limit: int,
    member_id: int | None = None, vouchers: bool = True, to_send: bool = False,
) -> list[RedemptionRow]:  # fmt: skip
    """Redemptions not yet handed over, sent or used, and not cancelled, oldest first: what
    the merchant still owes (vouchers included: the partner still owes them). `member_id`:
    one member's, those of members merged into them included (a till picking up an app's
    redemption); `vouchers`: False leaves partners' vouchers out (no till hands them over);
    `to_send`: only those with no store named, which are sent rather than collected."""
    with uow.read() as session:
        stmt = (
            select(RewardRedemption, Reward, PointsEntry.member_id)
            .join(Reward, Reward.id == RewardRedemption.reward_id)
            .join(PointsEntry, PointsEntry.id == RewardRedemption.entry_id)
            .where(RewardRedemption.status == "redeemed", RewardRedemption.fulfilled_at.is_(None))
            .order_by(RewardRedemption.id)
            .limit(limit)
        )
        if store is not None:
            stmt = stmt.where(RewardRedemption.store == store)
        if reward is not None:
            stmt = stmt.where(Reward.code == reward)
        if not vouchers:
            stmt = stmt.where(RewardRedemption.voucher.is_(None))
        if to_send:
            stmt = stmt.where(RewardRedemption.store.is_(None))
        if member_id is not None:
            mid = members.current_member_id(session, member_id)
            stmt = stmt.where(PointsEntry.member_id == mid)
        return [row_of(row, what, owner) for row, what, owner in session.execute(stmt)]


def _fulfil(
    session: Session, key: str, req: RedemptionFulfil, actor: str | None, *, voucher: bool
) -> RedemptionRead:
    row, entry, reward = held_redemption(session, key)
    # as it was redeemed, whatever the reward has become since: a voucher given stays one
    if (row.voucher is not None) != voucher:
        if row.voucher is not None:
            raise RewardRefused(
                "wrong_fulfilment",
                f"{key} came with a voucher: it is fulfilled by using the voucher",
                {"key": key},
            )
        raise RewardRefused(
            "wrong_fulfilment", f"{key} came with no voucher: fulfil it by its key",
            {"redemption": key},
        )  # fmt: skip
    if row.status == "cancelled":
        assert row.cancelled_at is not None  # set with the status
        raise RewardRefused(
            "redemption_cancelled", f"{key} was cancelled on {row.cancelled_at:%Y-%m-%d}",
            {"key": key, "moment": clock.as_utc(row.cancelled_at).isoformat()},
        )  # fmt: skip
    if row.fulfilled_at is not None:
        when = f"{row.fulfilled_at:%Y-%m-%d %H:%M} UTC"
        moment, store = clock.as_utc(row.fulfilled_at).isoformat(), row.fulfilled_store
        if voucher and store:
            raise RewardRefused(
                "voucher_used", f"{row.voucher} was used on {when} at {store}",
                {"voucher": row.voucher, "moment": moment, "store": store},
            )  # fmt: skip
        if voucher:
            raise RewardRefused(
                "voucher_used", f"{row.voucher} was used on {when}",
                {"voucher": row.voucher, "moment": moment},
            )  # fmt: skip
        if store:
            raise RewardRefused(
                "already_fulfilled", f"{key} was handed over or sent on {when} at {store}",
                {"key": key, "moment": moment, "store": store},
            )  # fmt: skip
        raise RewardRefused(
            "already_fulfilled", f"{key} was handed over or sent on {when}",
            {"key": key, "moment": moment},
        )  # fmt: skip
    if req.store is not None:
        commerce.store_by_code(session, req.store)
    now = clock.now()
    row.fulfilled_at, row.fulfilled_store, row.fulfilled_by = now, req.store, actor
    row.reference = req.reference
    session.flush()
    outbox.publish(
        session, topic="RewardFulfilled", key=f"reward-fulfilled:{key}", now=now,
        payload={"member_id": entry.member_id, "reward": reward.code, "kind": reward.kind,
                 "partner": reward.partner, "quantity": row.quantity, "store": req.store,
                 # the tracking note is read from the redemption: a fact queued for others
                 # is not where free text about a person should travel (erasure blanks it)
                 "sent_with_reference": req.reference is not None},
    )  # fmt: skip
    return redemption_read(session, row, reward, entry.member_id, replayed=False)
