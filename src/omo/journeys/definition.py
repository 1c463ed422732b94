"""What a merchant writes to define a journey: a trigger, an audience, steps (pure).

    {"name": "Welcome", "trigger": {"kind": "joined"},
     "audience": "views_30d >= 0", "control_share": 0.1, "conversion_days": 14,
     "steps": [{"type": "send", "channel": "email", "template": "welcome"},
               {"type": "wait", "days": 3},
               {"type": "condition", "if": "no_purchase_since_entry"},
               {"type": "issue_coupon", "template": "FIRST100"},
               {"type": "send", "channel": "sms", "template": "first_purchase_offer"}]}

Validation happens here, with the field and reason of every mistake; what needs the database
(does the coupon template exist?) is checked by the service when the journey is saved.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from omo.analytics import rules
from omo.commerce.channels import Channel
from omo.shared.schemas import MoneyIn

CHANNELS = ("email", "sms", "line", "push")
TAG = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[\w:.\-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- triggers -------------------------------------------------------------------------------
# Event triggers fire from the outbox after the fact commits; the others are time triggers that
# a scheduler evaluates as set-based queries. `window_days` bounds how far back a time trigger
# looks when it is evaluated, so switching a journey on does not sweep the whole history.


class Joined(_Strict):
    kind: Literal["joined"]


class NoPurchaseSinceJoin(_Strict):
    kind: Literal["no_purchase_since_join"]
    days: int = Field(default=30, ge=1, le=3650)
    window_days: int = Field(default=7, ge=1, le=365)


class CartAbandoned(_Strict):
    kind: Literal["cart_abandoned"]
    hours: int = Field(default=12, ge=1, le=24 * 90)
    window_hours: int = Field(default=48, ge=1, le=24 * 90)


class BirthdayMonth(_Strict):
    kind: Literal["birthday_month"]


class RepurchaseDue(_Strict):
    """The member's own purchase cycle (from the last refresh) has passed since the last order."""

    kind: Literal["repurchase_due"]
    early_days: int = Field(default=0, ge=0, le=365)
    window_days: int = Field(default=7, ge=1, le=365)


class Dormant(_Strict):
    kind: Literal["dormant"]
    days: int = Field(default=60, ge=1, le=3650)
    window_days: int = Field(default=7, ge=1, le=365)


class PointsExpiring(_Strict):
    """Members with at least `min_points` spendable points that expire within `days`: entered
    once for each day their soonest points expire (PTS-4: tell them before they lose them)."""

    kind: Literal["points_expiring"]
    days: int = Field(default=30, ge=1, le=365)
    min_points: int = Field(default=1, ge=1, le=10_000_000)


class InSegment(_Strict):
    """Members of a segment (built-in such as high_potential, or saved) at the last refresh,
    entered at most once every `every_days`."""

    kind: Literal["segment"]
    segment: str = Field(min_length=1, max_length=40)
    every_days: int = Field(default=90, ge=1, le=3650)


class TierChangedTrigger(_Strict):
    kind: Literal["tier_changed"]
    to: list[str] = Field(default_factory=list, description="only into these levels (any if empty)")


class LowFeedback(_Strict):
    kind: Literal["low_feedback"]
    survey: Literal["nps", "csat"] = "nps"
    max_score: int = Field(default=6, ge=0, le=10)
    window_days: int = Field(default=7, ge=1, le=365)


class ProductBought(_Strict):
    kind: Literal["product_bought"]
    skus: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> ProductBought:
        if not self.skus and not self.categories:
            raise ValueError("name at least one sku or category")
        return self


class OrderSpend(_Strict):
    """滿額贈券: an order of at least `min_total` (on these channels), e.g. to issue a coupon
    for the next visit (單筆滿3000送100元券)."""

    kind: Literal["order_spend"]
    min_total: MoneyIn = Field(gt=0)
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=12)


Trigger = Annotated[
    Joined | NoPurchaseSinceJoin | CartAbandoned | BirthdayMonth | RepurchaseDue | Dormant
    | PointsExpiring | InSegment | TierChangedTrigger | LowFeedback | ProductBought
    | OrderSpend,
    Field(discriminator="kind"),
]  # fmt: skip
EVENT_TRIGGERS = frozenset({"joined", "tier_changed", "product_bought", "order_spend"})


# --- steps ----------------------------------------------------------------------------------


class Wait(_Strict):
    type: Literal["wait"]
    days: int = Field(default=0, ge=0, le=365)
    hours: int = Field(default=0, ge=0, le=24 * 365)

    @model_validator(mode="after")
    def _some(self) -> Wait:
        if self.days == 0 and self.hours == 0:
            raise ValueError("a wait needs days or hours")
        return self


class Condition(_Strict):
    """Go on only if this holds now; else the member leaves the journey."""

    type: Literal["condition"]
    if_: str = Field(alias="if", min_length=1, max_length=rules.MAX_LENGTH)

    @field_validator("if_")
    @classmethod
    def _readable(cls, value: str) -> str:
        if value in LIVE_CONDITIONS:
            return value
        try:
            rules.parse(value)
        except rules.RuleError as exc:
            raise ValueError(f"{exc}; or one of {', '.join(sorted(LIVE_CONDITIONS))}") from None
        return value


# conditions read live from the store rather than from the last refresh's scores
LIVE_CONDITIONS = frozenset({"no_purchase_since_entry", "purchased_since_entry"})


class Send(_Strict):
    type: Literal["send"]
    channel: Literal["email", "sms", "line", "push"]
    template: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")


class IssueCoupon(_Strict):
    """A coupon of a fixed template, or the one the member's tier gives (`"tier_benefit":
    "birthday_coupon"`: the birthday coupon of their level; nothing at a level without one)."""

    type: Literal["issue_coupon"]
    template: str | None = Field(default=None, min_length=1, max_length=40)
    tier_benefit: Literal["birthday_coupon"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> IssueCoupon:
        if (self.template is None) == (self.tier_benefit is None):
            raise ValueError("give a coupon template or a tier_benefit, one of them")
        return self


class AwardPoints(_Strict):
    type: Literal["award_points"]
    points: int = Field(ge=1, le=1_000_000)
    reason: str = Field(default="journey bonus", min_length=1, max_length=200)


class AddTag(_Strict):
    type: Literal["add_tag"]
    tag: TAG


class RemoveTag(_Strict):
    type: Literal["remove_tag"]
    tag: TAG


class CreateTask(_Strict):
    """A task for the staff of the member's home store (where they joined, else last bought)."""

    type: Literal["create_task"]
    kind: str = Field(default="care_call", min_length=1, max_length=32)
    note: str = Field(min_length=1, max_length=500)


Step = Annotated[
    Wait | Condition | Send | IssueCoupon | AwardPoints | AddTag | RemoveTag | CreateTask,
    Field(discriminator="type"),
]


class JourneyDefinition(_Strict):
    name: str = Field(min_length=1, max_length=120)
    trigger: Trigger
    audience: str | None = Field(
        default=None, max_length=rules.MAX_LENGTH,
        description="a rule over the member's figures (the segment rule language)",
    )  # fmt: skip
    control_share: float = Field(default=0.1, ge=0, le=0.5)
    conversion_days: int = Field(default=14, ge=1, le=365)
    steps: list[Step] = Field(min_length=1, max_length=30)

    @field_validator("audience")
    @classmethod
    def _audience(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return rules.parse(value).text
        except rules.RuleError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _acts(self) -> JourneyDefinition:
        if all(isinstance(s, Wait | Condition) for s in self.steps):
            raise ValueError("a journey needs at least one action (send, coupon, points …)")
        return self

    def coupon_templates(self) -> set[str]:
        return {s.template for s in self.steps if isinstance(s, IssueCoupon) and s.template}

    def templates(self) -> set[tuple[str, str]]:
        return {(s.template, s.channel) for s in self.steps if isinstance(s, Send)}


# --- the control group ----------------------------------------------------------------------

_PRIME = 2_147_483_647  # 2^31 - 1
_MULT = 48_271  # MINSTD: a full-period multiplier modulo the prime


def in_control(member_id: int, *, salt: int, share: float) -> bool:
    """Whether this member is held out of this journey (same answer on every run): a
    multiplicative hash of member and the journey's salt, scaled to [0, 1)."""
    x = (member_id * 2_654_435_761 + salt) % _PRIME
    for _ in range(3):
        x = (x * _MULT) % _PRIME
    return x / _PRIME < share
