"""Refresh runs and each member's latest figures, scores, segment and predictions.

member_scores is a derived table: each refresh replaces it whole in one transaction, so readers
see either the previous run or the new one. A merge leaves it alone (the absorbed member's row
goes stale and is no longer listed); the next refresh scores the merged person.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import Money, UtcDateTime


class AnalyticsRun(Base):
    __tablename__ = "analytics_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engine: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # running, done, failed
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    members: Mapped[int] = mapped_column(Integer, default=0)
    buyers: Mapped[int] = mapped_column(Integer, default=0)
    # the policy used (bins, segment rules, grades, stages) and the fitted CLV models
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    models: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    segments: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    timings: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(String(500))


class MemberScore(Base):
    __tablename__ = "member_scores"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_runs.id"))
    orders: Mapped[int] = mapped_column(Integer)
    purchase_days: Mapped[int] = mapped_column(Integer)
    spend: Mapped[Decimal] = mapped_column(Money)
    recency_days: Mapped[int | None] = mapped_column(Integer)
    tenure_days: Mapped[int | None] = mapped_column(Integer)
    online_orders: Mapped[int] = mapped_column(Integer)
    offline_orders: Mapped[int] = mapped_column(Integer)
    discount_share: Mapped[float | None] = mapped_column(Float)
    cycle_days: Mapped[float | None] = mapped_column(Float)  # mean days between purchase days
    views_30d: Mapped[int] = mapped_column(Integer, default=0)  # product views, last 30 days
    carts_30d: Mapped[int] = mapped_column(Integer, default=0)  # adds to cart, last 30 days
    ad_clicks_30d: Mapped[int] = mapped_column(Integer, default=0)
    nps_last: Mapped[int | None] = mapped_column(SmallInteger)  # the last NPS answer, 90 days
    r: Mapped[int | None] = mapped_column(SmallInteger)
    f: Mapped[int | None] = mapped_column(SmallInteger)
    m: Mapped[int | None] = mapped_column(SmallInteger)
    segment: Mapped[str] = mapped_column(String(32))
    grade: Mapped[str | None] = mapped_column(String(16))
    lifecycle: Mapped[str] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(JSON)
    p_alive: Mapped[float | None] = mapped_column(Float)
    purchases_90d: Mapped[float | None] = mapped_column(Float)
    purchases_365d: Mapped[float | None] = mapped_column(Float)
    expected_order_value: Mapped[Decimal | None] = mapped_column(Money)
    clv: Mapped[Decimal | None] = mapped_column(Money)  # expected spend in the next 365 days
    clv_tier: Mapped[str | None] = mapped_column(String(8))
    at_risk: Mapped[bool] = mapped_column(Boolean)  # valuable and probably slipping away

    __table_args__ = (
        Index("ix_member_scores_segment", "segment"),
        Index("ix_member_scores_at_risk", "at_risk", "spend"),
    )


class SavedSegment(Base):
    """A merchant's dynamic segment: a rule over the latest scores, counted when asked."""

    __tablename__ = "saved_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    rule: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BasketRule(Base):
    """An association rule of the last refresh: bought `antecedent` (with `antecedent_2`, when
    not '') → also `consequent`."""

    __tablename__ = "basket_rules"

    level: Mapped[str] = mapped_column(String(16), primary_key=True)  # sku | category
    antecedent: Mapped[str] = mapped_column(String(64), primary_key=True)
    # the antecedent's second item ({A, B} → C), '' for a one-item antecedent; A < B
    antecedent_2: Mapped[str] = mapped_column(String(64), primary_key=True, server_default="")
    consequent: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_runs.id"))
    orders: Mapped[int] = mapped_column(Integer)  # purchases with both
    support: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    lift: Mapped[float] = mapped_column(Float)


class CohortMonth(Base):
    """Monthly acquisition cohorts × retention of the last refresh: of the members who joined
    in `cohort`, how many bought in the `months_since`-th month after."""

    __tablename__ = "cohort_retention"

    cohort: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM, local time
    months_since: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_runs.id"))
    size: Mapped[int] = mapped_column(Integer)  # members who joined that month
    active: Mapped[int] = mapped_column(Integer)  # of them, those with a purchase that month


class NewProduct(Base):
    """A SKU first bought in the refresh's new-product window, and how far it has reached."""

    __tablename__ = "new_products"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_runs.id"))
    launched: Mapped[str] = mapped_column(String(10))  # day of its first sale, YYYY-MM-DD local
    buyers: Mapped[int] = mapped_column(Integer)
    repeat_buyers: Mapped[int] = mapped_column(Integer)  # bought it in two orders or more
    window_buyers: Mapped[int] = mapped_column(Integer)  # members who bought anything since
    penetration: Mapped[float] = mapped_column(Float)  # buyers / window_buyers
    repeat_rate: Mapped[float] = mapped_column(Float)  # repeat_buyers / buyers
