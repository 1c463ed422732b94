"""Sales channels and what counts as online (pure)."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    POS = "pos"
    WEB = "web"
    APP = "app"
    SHOPEE = "shopee"
    MOMO = "momo"
    LINE = "line"


class Fulfilment(StrEnum):
    IN_STORE = "in_store"
    DELIVERY = "delivery"
    STORE_PICKUP = "store_pickup"


class OrderStatus(StrEnum):
    PLACED = "placed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


OFFLINE_CHANNELS = frozenset({Channel.POS})
# Orders that count towards spend, stats and KPIs.
COUNTED_STATUSES = (OrderStatus.PLACED.value, OrderStatus.COMPLETED.value)


def is_online(channel: str) -> bool:
    """An order is online when it was placed outside a store, even if picked up in one."""
    return channel not in OFFLINE_CHANNELS
