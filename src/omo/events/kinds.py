"""Event kinds and what each must carry (pure)."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    VIEW = "view"
    FAVOURITE = "favourite"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    CHECKOUT_START = "checkout_start"
    SEARCH = "search"
    AD_CLICK = "ad_click"
    LINE_FOLLOW = "line_follow"
    EVENT_SIGNUP = "event_signup"
    STAFF_INTERACTION = "staff_interaction"
    FEEDBACK = "feedback"
    REVIEW = "review"  # a product review or other content the member posted (UGC)


SKU_KINDS = frozenset(
    {EventKind.VIEW, EventKind.FAVOURITE, EventKind.ADD_TO_CART, EventKind.REMOVE_FROM_CART}
)
# Score ranges of the feedback surveys: NPS 0-10, CSAT 1-5.
SURVEY_RANGES = {"nps": (0, 10), "csat": (1, 5)}
