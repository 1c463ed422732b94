"""Column types that keep money exact and time in UTC on every database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect
from sqlalchemy.types import TypeDecorator

from omo.shared.money import CENT, from_cents, to_money


class Money(TypeDecorator[Decimal]):
    """Decimal in Python, integer minor units (cents) in the database.

    SQLite has no exact decimal type; storing cents as integers keeps sums exact there and on
    PostgreSQL alike, including SUM() in SQL.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(to_money(value) / CENT)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return from_cents(value)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; naive UTC in SQLite, timestamptz on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        # what a merge's undo reads a stored value back as (a TypeDecorator says `object`)
        return datetime

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError("expected a datetime")
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        utc: datetime = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def to_text(value: Any) -> str | None:
            # SQLAlchemy's SQLite format, microseconds always written (so text order is time
            # order), by the C formatter: 1.2 µs a value against SQLAlchemy's 2.4 µs, and a sale
            # binds a dozen
            if value is None:
                return None
            if not isinstance(value, datetime):
                raise TypeError("expected a datetime")
            if value.tzinfo is None:
                return value.isoformat(" ", "microseconds")
            return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]  # no "+00:00"

        return to_text

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
