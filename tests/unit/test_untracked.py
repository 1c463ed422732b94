"""Untracked objects read like the ORM's own and cannot slip into a session."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import UnmappedInstanceError

from omo.commerce.models import Order
from omo.commerce.schemas import OrderRead
from omo.shared.untracked import untracked

AT = datetime(2026, 3, 1, tzinfo=UTC)
VALUES = {
    "id": 7, "channel": "pos", "external_id": "P-1", "payload_hash": "x", "member_id": 3,
    "store_id": None, "fulfilment": "in_store", "status": "completed", "ordered_at": AT,
    "currency": "TWD", "subtotal": Decimal("10.50"), "discount_total": Decimal(0),
    "shipping_fee": Decimal(0), "total": Decimal("10.50"), "refunded_total": Decimal(0),
    "created_at": AT,
}  # fmt: skip


def test_it_reads_like_the_orms_object() -> None:
    held = untracked(Order, VALUES)
    made = Order(**VALUES)
    assert isinstance(held, Order)
    assert {k: getattr(held, k) for k in VALUES} == {k: getattr(made, k) for k in VALUES}
    assert OrderRead.model_validate(held) == OrderRead.model_validate(made)


def test_a_session_refuses_it() -> None:
    held = untracked(Order, VALUES)
    with (
        Session(sa.create_engine("sqlite://")) as session,
        pytest.raises(UnmappedInstanceError, match="lacks instrumentation"),
    ):
        session.add(held)


def test_it_reads_its_values_before_any_query() -> None:
    """In a process that has run no query yet (one whose first work is a sale), the mappers
    are configured on first use, as the ORM does on its first query."""
    from tests.conftest import fresh_python

    got = fresh_python(
        """
        import json
        import omo.models
        from omo.commerce.models import Order
        from omo.shared.untracked import untracked
        print(json.dumps(untracked(Order, {"id": 5, "channel": "pos"}).id))
        """
    )
    assert got == 5
