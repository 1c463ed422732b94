"""Rows a use case reads more than once, kept for its transaction.

SQLAlchemy's identity map holds objects weakly: a row read, used and let go is read again by
the next `session.get` of the same key. A checkout reads the member when it prices the basket
and again when it records the sale, so the areas pin such rows to the session (a bounded
number; the session lives one transaction) and `session.get` finds them without a query. Only
rows written through the ORM are pinned: a Core UPDATE would leave a pinned object stale.
Values read in Core go in a `memo` (the tier rows, which the tiers area writes in Core and
keeps there).
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")
LIMIT = 256


def pin(session: Session, obj: T) -> T:
    pins: list[object] = session.info.setdefault("omo.pins", [])
    if len(pins) >= LIMIT:  # a long batch: let the identity map forget as it would
        pins.clear()
    pins.append(obj)
    return obj


def memo(session: Session, space: str) -> dict[object, object]:
    """A per-transaction dict for looked-up values (stores by code, products by SKU)."""
    found: dict[object, object] = session.info.setdefault(f"omo.memo.{space}", {})
    if len(found) >= LIMIT:
        found.clear()
    return found


def forget(session: Session, space: str) -> None:
    session.info.pop(f"omo.memo.{space}", None)
