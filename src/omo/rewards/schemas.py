"""Request and response shapes of the rewards area."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from omo.commerce.channels import Channel
from omo.commerce.schemas import CODE
from omo.shared.schemas import AwareDatetime, MoneyIn, MoneyOut, ReadModel, StrictModel

Kind = Literal["product", "gift", "service", "partner"]
REWARD_CODE = r"^[A-Za-z0-9_\-]{1,40}$"
KEY = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces


class RewardIn(StrictModel):
    name: str = Field(min_length=1, max_length=120)
    kind: Kind = "gift"
    partner: str | None = Field(
        default=None, min_length=1, max_length=80, description="who gives it (kind partner)"
    )
    points: int = Field(ge=1, le=10_000_000, description="the price of one, in points")
    cash: MoneyIn | None = Field(
        default=None, gt=0,
        description="點數加價購: also paid in money for one (500 points + NT$99), collected "
        "where it is redeemed; none: points alone",
    )  # fmt: skip
    stock: int | None = Field(
        default=None, ge=0, le=10_000_000,
        description="left to give now; none: unlimited. For a delivery use POST "
        "/rewards/{code}/stock, which cannot lose a redemption made at the same moment",
    )  # fmt: skip
    per_member: int | None = Field(
        default=None, ge=1, le=10_000, description="the most one member may redeem"
    )
    min_level: str | None = Field(
        default=None, max_length=32, description="tier level code: that level and above only"
    )
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    early_access_days: int = Field(
        default=0, ge=0, le=90,
        description="members of levels with early access may redeem this many days early",
    )  # fmt: skip
    active: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> RewardIn:
        if (self.kind == "partner") != (self.partner is not None):
            raise ValueError("partner: name the partner for a partner reward, and only then")
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            raise ValueError("valid_until: must be after valid_from")
        if self.early_access_days and self.valid_from is None:
            raise ValueError("early_access_days: counts back from valid_from; give it")
        return self


class RewardRead(ReadModel):
    code: str
    name: str
    kind: str
    partner: str | None
    points: int
    cash: MoneyOut | None = Field(description="paid in money for one beside the points")
    stock: int | None
    per_member: int | None
    min_level: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    early_access_days: int
    active: bool
    redeemed: int = Field(description="units redeemed and not cancelled")
    updated_at: datetime


class RewardRedeem(StrictModel):
    idempotency_key: str = Field(
        min_length=1, max_length=120, pattern=KEY,
        description="the till's or app's id for this redemption; a retry changes nothing",
    )  # fmt: skip
    quantity: int = Field(default=1, ge=1, le=100)
    channel: Channel | None = None
    store: str | None = Field(default=None, pattern=CODE, description="store code")
    handed_over: bool = Field(
        default=False,
        description="given to the member now, at `store` (a till): fulfilled at once",
    )


class RedemptionFulfil(StrictModel):
    """A redemption handed over at a store, sent in a parcel, or its voucher used."""

    store: str | None = Field(default=None, pattern=CODE, description="where it was handed over")
    reference: str | None = Field(
        default=None, min_length=1, max_length=120, description="a parcel's tracking no., a note"
    )


class RedemptionCancel(StrictModel):
    returned: bool = Field(
        default=False,
        description="the reward came back: needed to cancel one already handed over",
    )


class StockChange(StrictModel):
    idempotency_key: str = Field(
        min_length=1, max_length=120, pattern=KEY, description="a retry changes nothing"
    )
    units: int = Field(
        ge=-10_000_000, le=10_000_000, description="added to what is left; below zero: written off"
    )
    reason: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _moves(self) -> StockChange:
        if self.units == 0:
            raise ValueError("units: add or write off at least one")
        return self


class RedemptionRow(ReadModel):
    idempotency_key: str
    reward: str
    name: str = Field(description="the reward's name")
    kind: str
    partner: str | None
    member_id: int
    quantity: int
    points: int
    cash: MoneyOut | None = Field(
        default=None, description="collected beside the points (加價購); given back if cancelled"
    )
    status: str = Field(description="redeemed | cancelled")
    channel: str | None
    store: str | None
    created_at: datetime
    cancelled_at: datetime | None
    voucher: str | None = Field(description="partner rewards: shown at the partner, used once")
    fulfilled_at: datetime | None = Field(description="handed over, shipped or used; none: owed")
    fulfilled_store: str | None
    reference: str | None


class RedemptionRead(RedemptionRow):
    points_available: int = Field(description="the member's points after it")
    replayed: bool


class StockRead(ReadModel):
    reward: str
    units: int
    stock: int = Field(description="left to give after this change")
    replayed: bool


class SettlementRow(ReadModel):
    """One partner reward over a period: what the merchant owes the partner for."""

    partner: str
    reward: str
    name: str
    points: int = Field(description="the price of one, in points, today")
    issued: int = Field(description="units redeemed in the period")
    used: int = Field(description="units whose voucher was used in the period: the bill")
    cancelled: int = Field(description="units cancelled in the period")
    outstanding: int = Field(description="units redeemed, not used, not cancelled, at `until`")
