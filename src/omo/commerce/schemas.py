"""Request and response shapes of the commerce area."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import Field, model_validator

from omo.commerce.channels import Channel, Fulfilment, OrderStatus
from omo.members.schemas import IdentifierIn
from omo.shared.money import MAX_ORDER, ZERO
from omo.shared.schemas import (
    MAX_ID,
    AwareDatetime,
    MoneyIn,
    MoneyOut,
    OrderMoneyIn,
    ReadModel,
    StrictModel,
)

CODE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$"


class StoreUpsert(StrictModel):
    name: str = Field(min_length=1, max_length=120)
    region: str = Field(min_length=1, max_length=32)
    city: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=300)
    opened_on: date | None = None
    is_active: bool = True


class StoreRead(ReadModel):
    id: int
    code: str
    name: str
    region: str
    city: str | None
    address: str | None
    opened_on: date | None
    is_active: bool


class ProductUpsert(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=64)
    price: MoneyIn
    unit_cost: MoneyIn | None = None
    is_active: bool = True


class ProductRead(ReadModel):
    id: int
    sku: str
    name: str
    category: str
    price: MoneyOut
    unit_cost: MoneyOut | None
    is_active: bool


class OrderLineIn(StrictModel):
    sku: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=64)
    quantity: int = Field(ge=1, le=100_000)
    unit_price: MoneyIn
    discount: OrderMoneyIn = ZERO

    @model_validator(mode="after")
    def _discount_within_line(self) -> OrderLineIn:
        if self.discount > self.unit_price * self.quantity:
            raise ValueError("discount exceeds the line's price × quantity")
        return self


class OrderIn(StrictModel):
    """An order from any channel; (channel, external_id) is its idempotency key."""

    channel: Channel
    external_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ordered_at: AwareDatetime
    store: str | None = Field(default=None, pattern=CODE, description="store code")
    fulfilment: Fulfilment | None = Field(
        default=None, description="defaults to in_store for pos, delivery otherwise"
    )
    status: OrderStatus = OrderStatus.COMPLETED
    currency: str = Field(default="TWD", pattern=r"^[A-Z]{3}$")
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    customer: list[IdentifierIn] = Field(
        default_factory=list, max_length=20, description="identifiers the order came with"
    )
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)
    discount_total: OrderMoneyIn = Field(default=ZERO, description="order-level discount")
    shipping_fee: MoneyIn = ZERO
    total: OrderMoneyIn | None = Field(
        default=None, description="checked against the lines if given"
    )

    @model_validator(mode="after")
    def _consistent(self) -> OrderIn:
        fulfilment = self.fulfilment or (
            Fulfilment.IN_STORE if self.channel == Channel.POS else Fulfilment.DELIVERY
        )
        self.fulfilment = fulfilment
        if self.channel == Channel.POS and fulfilment != Fulfilment.IN_STORE:
            raise ValueError("fulfilment: a pos order is fulfilled in_store")
        if fulfilment in (Fulfilment.IN_STORE, Fulfilment.STORE_PICKUP) and not self.store:
            raise ValueError(f"store: required for {fulfilment.value} orders")
        if self.channel != Channel.POS and fulfilment == Fulfilment.IN_STORE:
            raise ValueError(
                "fulfilment: in_store is for pos orders; online orders use store_pickup"
            )
        gross = sum((line.unit_price * line.quantity for line in self.lines), ZERO)
        if gross + self.shipping_fee > MAX_ORDER:
            raise ValueError(
                f"lines: the order comes to {gross + self.shipping_fee}, more than one order may "
                f"({MAX_ORDER})"
            )
        subtotal = self.subtotal
        if self.discount_total > subtotal:
            raise ValueError("discount_total: exceeds the subtotal of the lines")
        computed = subtotal - self.discount_total + self.shipping_fee
        if self.total is not None and self.total != computed:
            raise ValueError(
                f"total: {self.total} does not equal lines {subtotal} - discount "
                f"{self.discount_total} + shipping {self.shipping_fee} = {computed}"
            )
        self.total = computed
        return self

    @property
    def subtotal(self) -> Decimal:
        return sum((line.unit_price * line.quantity - line.discount for line in self.lines), ZERO)


class OrderLineRead(ReadModel):
    line_no: int
    sku: str
    product_id: int | None
    name: str | None
    category: str | None
    quantity: int
    unit_price: MoneyOut
    discount: MoneyOut
    line_total: MoneyOut


class OrderRead(ReadModel):
    id: int
    channel: str
    external_id: str
    member_id: int | None
    store_id: int | None
    fulfilment: str
    status: str = Field(description="placed, completed, cancelled, or refunded (in full)")
    refunded_total: MoneyOut
    ordered_at: datetime
    currency: str
    subtotal: MoneyOut
    discount_total: MoneyOut
    shipping_fee: MoneyOut
    total: MoneyOut
    created_at: datetime


class OrderResult(OrderRead):
    lines: list[OrderLineRead]
    replayed: bool = Field(description="true when this was a retry of an order already recorded")


class StatsRead(ReadModel):
    first_order_at: datetime | None
    last_order_at: datetime | None
    order_count: int
    total_spend: MoneyOut
    online_spend: MoneyOut
    offline_spend: MoneyOut
    online_orders: int
    offline_orders: int
    last_channel: str | None
    last_store_id: int | None
