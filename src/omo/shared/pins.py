"""Values a use case looks up more than once, kept for its transaction.

A checkout reads the store, the products and the member's tier row when it prices the basket,
and again when it records the sale and places the member. The areas read them once (in Core,
or prepared) and keep them in a `memo` of the session, which lives one transaction; an area
that writes such rows updates or forgets its memo. Each memo is bounded: a long batch lets it
go and reads again.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

LIMIT = 256


def memo(session: Session, space: str) -> dict[object, object]:
    """A per-transaction dict for looked-up values (stores by code, products by SKU)."""
    found: dict[object, object] = session.info.setdefault(f"omo.memo.{space}", {})
    if len(found) >= LIMIT:
        found.clear()
    return found


def forget(session: Session, space: str) -> None:
    session.info.pop(f"omo.memo.{space}", None)
