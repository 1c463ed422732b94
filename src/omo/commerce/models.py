"""Tables of the commerce area: stores, products, orders and per-member purchase stats."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from omo.db import Base
from omo.shared.sqltypes import Money, UtcDateTime


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    region: Mapped[str] = mapped_column(String(32))
    city: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(300))
    opened_on: Mapped[date | None] = mapped_column(Date)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64), index=True)
    price: Mapped[Decimal] = mapped_column(Money)
    unit_cost: Mapped[Decimal | None] = mapped_column(Money)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (CheckConstraint("price >= 0", name="price_not_negative"),)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    # sha256 of the normalised request: a retry with other content is refused, not replayed
    payload_hash: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    fulfilment: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    ordered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(Money)
    discount_total: Mapped[Decimal] = mapped_column(Money)
    shipping_fee: Mapped[Decimal] = mapped_column(Money)
    total: Mapped[Decimal] = mapped_column(Money)
    # money given back so far; stats and tiers count total − refunded_total
    refunded_total: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        # covering (migration 0023): a tier window's spend reads only the index
        Index(
            "ix_orders_member_ordered",
            "member_id",
            "ordered_at",
            "status",
            "total",
            "refunded_total",
        ),
        Index("ix_orders_ordered_at", "ordered_at"),
        CheckConstraint("total >= 0", name="total_not_negative"),
    )


class OrderRefund(Base):
    """Money given back on an order, whole or by lines (CHK-3); idempotent on its key."""

    __tablename__ = "order_refunds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    # [{"line_no": 1, "quantity": 2}, …]; empty for a whole-order refund
    lines: Mapped[list[dict[str, int]]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(300))
    actor: Mapped[str | None] = mapped_column(String(80))
    approved_by: Mapped[str | None] = mapped_column(String(80))  # who let it past the policy
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # what it did, to answer a retry the same (null on refunds made before migration 0031)
    points_taken_back: Mapped[int | None] = mapped_column(Integer)
    points_given_back: Mapped[int | None] = mapped_column(Integer)
    points_short: Mapped[int | None] = mapped_column(Integer)  # earned, spent, not taken back
    points_short_value: Mapped[Decimal | None] = mapped_column(Money)
    coupons_restored: Mapped[int | None] = mapped_column(Integer)
    free_shipping_restored: Mapped[bool | None] = mapped_column(Boolean)
    referral_revoked: Mapped[bool | None] = mapped_column(Boolean)
    tier_lowered_to: Mapped[str | None] = mapped_column(String(32))
    # kept back from the money: coupons whose threshold what is kept misses (returns policy)
    coupon_clawed_back: Mapped[Decimal | None] = mapped_column(Money)
    coupons_clawed_back: Mapped[list[str] | None] = mapped_column(JSON)
    # kept back from the money for earned points the member had spent (returns policy)
    points_charged: Mapped[Decimal | None] = mapped_column(Money)
    tier_gifts_withdrawn: Mapped[int | None] = mapped_column(Integer)  # gifts of a level undone
    # coupons journeys gave for the order or the level it earned, voided with their reason
    journey_coupons_withdrawn: Mapped[int | None] = mapped_column(Integer)
    # kept back from the money: what such coupons already used took off (returns policy)
    journey_coupons_charged: Mapped[Decimal | None] = mapped_column(Money)
    # points journeys awarded for the order or the level it earned, taken back with their
    # reason, and those of them already spent (written off)
    journey_points_taken_back: Mapped[int | None] = mapped_column(Integer)
    journey_points_short: Mapped[int | None] = mapped_column(Integer)
    # the store whose till gave it (跨店退貨: not always the sale's); none: an order of no store
    # refunded away from any till (a web shop's return by post)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))

    __table_args__ = (Index("ix_order_refunds_created", "created_at"),)


class ReturnsPolicy(Base):
    """One version of the returns policy (which refunds need a manager); the newest holds."""

    __tablename__ = "returns_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    discount: Mapped[Decimal] = mapped_column(Money)
    line_total: Mapped[Decimal] = mapped_column(Money)

    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )


class OrderContact(Base):
    """An identifier the order came with, kept so a guest order can be linked on enrolment."""

    __tablename__ = "order_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    namespace: Mapped[str] = mapped_column(String(24), default="")
    value: Mapped[str] = mapped_column(String(254))

    __table_args__ = (Index("ix_order_contacts_identifier", "kind", "namespace", "value"),)


class MemberStats(Base):
    """Purchase aggregates of one member, kept in the same transaction as every order."""

    __tablename__ = "member_stats"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    first_order_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    total_spend: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    online_spend: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    offline_spend: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    online_orders: Mapped[int] = mapped_column(Integer, default=0)
    offline_orders: Mapped[int] = mapped_column(Integer, default=0)
    last_channel: Mapped[str | None] = mapped_column(String(16))
    last_store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
