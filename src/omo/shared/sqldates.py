"""Day arithmetic in SQL on both databases (SQLite keeps UTC datetimes as text)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, cast, func, literal
from sqlalchemy.orm import Session


def days_between(session: Session, earlier: Any, later: Any) -> Any:
    """(later - earlier) in days, as a number; either side a column or an aware datetime."""
    if session.get_bind().dialect.name == "sqlite":
        return func.julianday(_sqlite(later)) - func.julianday(_sqlite(earlier))
    return cast(func.extract("epoch", _pg(later) - _pg(earlier)), Float) / 86_400.0


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value


def _pg(value: Any) -> Any:
    return literal(value) if isinstance(value, datetime) else value
