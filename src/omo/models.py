"""Every area's tables, imported so that Base.metadata is complete (Alembic, tests)."""

from omo.analytics.models import AnalyticsRun, MemberScore, SavedSegment
from omo.apikeys.models import ApiKey
from omo.audit.models import AuditEntry
from omo.checkout.models import StoreDayClosing
from omo.commerce.models import MemberStats, Order, OrderContact, OrderLine, Product, Store
from omo.coupons.models import Coupon, CouponRedemption, CouponTemplateRow
from omo.db import Base
from omo.events.models import Event
from omo.identity.models import Merge
from omo.journeys.models import (
    Journey,
    JourneyEntry,
    JourneyStep,
    JourneyVersion,
    TriggerScan,
)
from omo.members.models import Consent, ConsentChange, Member, MemberIdentifier, MemberTag
from omo.messaging.models import Message, OutboxMessage, OutboxPruning, PushSubscription
from omo.points.models import PointsAllocation, PointsEntry, PointsProgramme
from omo.referrals.models import Referral, ReferralCode
from omo.rewards.models import Reward, RewardRedemption, RewardStockMove
from omo.tasks.models import StaffTask
from omo.tiers.models import MemberTier, TierBenefitUse, TierChange, TierProgrammeVersion
from omo.users.models import User
from omo.webhooks.models import Webhook

__all__ = [
    "AnalyticsRun",
    "ApiKey",
    "AuditEntry",
    "Base",
    "Consent",
    "ConsentChange",
    "Coupon",
    "CouponRedemption",
    "CouponTemplateRow",
    "Event",
    "Journey",
    "JourneyEntry",
    "JourneyStep",
    "JourneyVersion",
    "Member",
    "MemberIdentifier",
    "MemberScore",
    "MemberStats",
    "MemberTag",
    "MemberTier",
    "Merge",
    "Message",
    "Order",
    "OrderContact",
    "OrderLine",
    "OutboxMessage",
    "OutboxPruning",
    "PointsAllocation",
    "PointsEntry",
    "PointsProgramme",
    "Product",
    "PushSubscription",
    "Referral",
    "ReferralCode",
    "Reward",
    "RewardRedemption",
    "RewardStockMove",
    "SavedSegment",
    "StaffTask",
    "Store",
    "StoreDayClosing",
    "TierBenefitUse",
    "TierChange",
    "TierProgrammeVersion",
    "TriggerScan",
    "User",
    "Webhook",
]
