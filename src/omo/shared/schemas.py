"""Schema pieces shared by every area's API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

from omo.shared.clock import as_utc
from omo.shared.money import CENT, MAX_ORDER


def _money(value: Decimal) -> Decimal:
    cents = value.quantize(CENT)
    if cents != value:
        raise ValueError("money has at most two decimal places")
    return cents


# Moments a request may name: a sale's windows and expiries are worked out around them, and a
# year-1 moment ahead of UTC was a 500 (OverflowError) where it was turned into UTC.
FIRST_YEAR, LAST_YEAR = 1900, 2999


def within_years(value: datetime) -> datetime:
    """`value` in UTC (without an offset: UTC already) if it lies between FIRST_YEAR and
    LAST_YEAR there; else a ValueError, not the OverflowError of turning it into UTC."""
    try:
        utc = as_utc(value)
    except OverflowError:  # before year 1 or after 9999 in UTC
        utc = None
    if utc is None or not FIRST_YEAR <= utc.year <= LAST_YEAR:
        raise ValueError(
            f"timestamps must lie between the years {FIRST_YEAR} and {LAST_YEAR} (UTC)"
        )
    return utc


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps need a time zone, e.g. 2026-01-31T10:00:00+08:00")
    return within_years(value)


# The largest row id a request may name: ids are PostgreSQL `integer` columns, and a larger
# number refused here is a 422, where at the database it was a 500 (out of range).
MAX_ID = 2**31 - 1

# Money in requests: a JSON string or number with at most two places; in responses a string,
# so no client ever parses it as a float.
MoneyIn = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("1000000000"), allow_inf_nan=False),
    AfterValidator(_money),
]
# the same, negative too: a till's journal lists a return slip with what it paid back
SignedMoneyIn = Annotated[
    Decimal,
    Field(ge=Decimal("-1000000000"), le=Decimal("1000000000"), allow_inf_nan=False),
    AfterValidator(_money),
]
OrderMoneyIn = Annotated[
    Decimal,
    Field(ge=0, le=MAX_ORDER, allow_inf_nan=False),
    AfterValidator(_money),
]
MoneyOut = Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
# a moment a report's query names: without an offset, UTC
Moment = Annotated[datetime, AfterValidator(within_years)]
# a product category as the catalogue stores it (products.category is 64 characters)
CategoryName = Annotated[str, Field(min_length=1, max_length=64)]


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
