"""Rows of a table as plain JSON values, for a member's data export (each area calls it on its
own tables)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session


def plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def rows_of(session: Session, model: Any, column: Any, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every row of `model` whose `column` is one of `ids`, each as {column name: value}."""
    if not ids:
        return []
    names = [c.key for c in model.__table__.columns]
    found = session.scalars(
        select(model).where(column.in_(list(ids))).order_by(*model.__table__.primary_key.columns)
    )
    return [{n: plain(getattr(row, n)) for n in names} for row in found]
