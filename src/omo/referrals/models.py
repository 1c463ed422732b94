"""Tables of the referrals area."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import UtcDateTime


class ReferralCode(Base):
    __tablename__ = "referral_codes"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Referral(Base):
    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    referee_id: Mapped[int] = mapped_column(ForeignKey("members.id"), unique=True)
    code: Mapped[str] = mapped_column(String(16))
    # pending | held | rewarded | rejected | lapsed; a refund of the qualifying order turns a
    # rewarded referral back to pending (the bonuses taken back); an undone merge, a rejected one
    status: Mapped[str] = mapped_column(String(12), index=True)
    reason: Mapped[str | None] = mapped_column(String(200))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    # what each side was given (0: nothing, e.g. the referrer past the yearly cap)
    referrer_points: Mapped[int | None] = mapped_column(Integer)
    referee_points: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
