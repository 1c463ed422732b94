"""The returns policy: which refunds a till may not give on its own (CHK-3). A refund of more than
an amount, or one long after the sale, is where money walks out of a store — a receipt found in
a bin, a staff member refunding a friend — so a merchant may ask that a manager approve it.
It also says what a coupon's discount does when a return leaves the customer below its
threshold, whether points the member has spent and a return cannot take back are charged, and
whether a coupon comes back with the goods it came off or only with the whole order.

The policy is versioned like the programmes: the newest holds. Without one, no refund needs
approval. Who may approve is the callers' business (a manager signed in at the till, an API key
with the `refunds:approve` scope); this says only whether a refund needs it and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.commerce.models import ReturnsPolicy
from omo.db import UnitOfWork
from omo.shared import clock
from omo.shared.schemas import MoneyIn, ReadModel, StrictModel
from omo.shared.versions import NewestVersion


class Policy(StrictModel):
    approval_over: MoneyIn | None = Field(
        default=None, gt=0, description="a refund of more than this needs a manager's approval"
    )
    approval_after_days: int | None = Field(
        default=None, ge=0, le=3650,
        description="a refund more than this many days after the sale needs a manager's approval",
    )  # fmt: skip
    coupon_threshold: Literal["keep", "claw_back"] = Field(
        default="keep",
        description="a return after which what is kept no longer reaches a coupon's threshold "
        "(滿1000折100, and the customer keeps 600 of it): keep — the discount stays with what is "
        "kept, in proportion; claw_back — the refund keeps back the coupon's discount on what "
        "is kept, so the kept goods cost what they would have cost without it",
    )
    spend_bonus: Literal["in_proportion", "threshold"] = Field(
        default="in_proportion",
        description="a promotion's spend bonus (滿3000送300點) on a partial return: "
        "in_proportion — it goes back with the returned goods' share of what the sale earned; "
        "threshold — it stays whole while what is kept still reaches the promotion's spend, "
        "and goes back whole with the return after which it no longer does",
    )
    spent_points: Literal["write_off", "charge"] = Field(
        default="write_off",
        description="points a return takes back that the member has already spent: "
        "write_off — they are written off and reported (points_short); charge — their value "
        "is also kept back from the money (points_charged), at most the refund",
    )
    journey_coupons_used: Literal["keep", "charge"] = Field(
        default="keep",
        description="a coupon a journey gave for the order's spend or the level it earned "
        "(滿額贈券, 升等禮) that the customer has used when a return takes its reason away "
        "(one not used is always withdrawn): keep — it stays used; charge — what it took off "
        "is kept back from the money (journey_coupons_charged), at most the refund",
    )
    coupons_back: Literal["whole_order", "with_their_goods"] = Field(
        default="whole_order",
        description="when a coupon used on an order may be used again (if its template gives "
        "coupons back on a refund): whole_order — when the whole order is refunded; "
        "with_their_goods — as soon as every unit it came off is returned (the free item of "
        "a free-item coupon, every 美妝保養 unit of a 美妝保養 coupon), whatever else is kept",
    )


class PolicyRead(ReadModel):
    version: int
    policy: Policy
    created_at: datetime | None
    actor: str | None


NO_POLICY = Policy()
VERSION = NewestVersion(
    ReturnsPolicy.__table__,  # type: ignore[arg-type]
    "policy",
    Policy.model_validate,
)


@dataclass(frozen=True)
class Held:
    """Why a refund waits for a manager: in English, and the values it is made of."""

    message: str
    ctx: dict[str, str | int]

    def __str__(self) -> str:
        return self.message


def needs_approval(
    p: Policy, *, amount: Decimal, ordered_at: datetime, now: datetime
) -> Held | None:
    """Why this refund needs a manager, or None (pure)."""
    if p.approval_over is not None and amount > p.approval_over:
        return Held(
            f"a refund of more than {p.approval_over:,.0f} needs a manager's approval",
            {"over": str(p.approval_over)},
        )
    if p.approval_after_days is not None and now - ordered_at > timedelta(
        days=p.approval_after_days
    ):
        return Held(
            f"a refund more than {p.approval_after_days} days after the sale needs a "
            "manager's approval",
            {"days": p.approval_after_days},
        )
    return None


def in_force(session: Session) -> Policy:
    return VERSION.get(session, default=NO_POLICY)


def get_policy(uow: UnitOfWork) -> PolicyRead:
    with uow.read() as session:
        row = session.scalar(select(ReturnsPolicy).order_by(ReturnsPolicy.id.desc()).limit(1))
        if row is None:
            return PolicyRead(version=0, policy=NO_POLICY, created_at=None, actor=None)
        return PolicyRead(
            version=row.id, policy=Policy.model_validate(row.policy), created_at=row.created_at,
            actor=row.actor,
        )  # fmt: skip


def set_policy(uow: UnitOfWork, *, policy: Policy, actor: str | None) -> PolicyRead:
    """A new version, in force for every refund from now on."""
    with uow.write() as session:
        row = ReturnsPolicy(
            policy=policy.model_dump(mode="json"), actor=actor, created_at=clock.now()
        )
        session.add(row)
        session.flush()
        audit.record(session, actor=actor, action="returns.policy", target=f"returns:v{row.id}",
                     detail=policy.model_dump(mode="json"))  # fmt: skip
        return PolicyRead(version=row.id, policy=policy, created_at=row.created_at, actor=actor)
