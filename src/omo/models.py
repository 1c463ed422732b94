"""Every area's tables, imported so that Base.metadata is complete (Alembic, tests)."""

from omo.analytics.models import AnalyticsRun, MemberScore, SavedSegment
from omo.apikeys.models import ApiKey
from omo.commerce.models import MemberStats, Order, OrderContact, OrderLine, Product, Store
from omo.coupons.models import Coupon, CouponRedemption, CouponTemplateRow
from omo.db import Base
from omo.events.models import Event
from omo.identity.models import Merge
from omo.members.models import Consent, Member, MemberIdentifier
from omo.messaging.models import OutboxMessage
from omo.points.models import PointsAllocation, PointsEntry, PointsProgramme
from omo.referrals.models import Referral, ReferralCode
from omo.tiers.models import MemberTier, TierChange, TierProgrammeVersion

__all__ = [
    "AnalyticsRun",
    "ApiKey",
    "Base",
    "Consent",
    "Coupon",
    "CouponRedemption",
    "CouponTemplateRow",
    "Event",
    "Member",
    "MemberIdentifier",
    "MemberScore",
    "MemberStats",
    "MemberTier",
    "Merge",
    "Order",
    "OrderContact",
    "OrderLine",
    "OutboxMessage",
    "PointsAllocation",
    "PointsEntry",
    "PointsProgramme",
    "Product",
    "Referral",
    "ReferralCode",
    "SavedSegment",
    "Store",
    "TierChange",
    "TierProgrammeVersion",
]
