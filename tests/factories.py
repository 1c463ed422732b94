"""Builders of valid inputs, per area; tests change only what they are about."""

from __future__ import annotations

import csv
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from omo.apikeys.service import Principal
from omo.commerce import service as commerce
from omo.commerce.schemas import OrderIn, OrderResult, StoreUpsert
from omo.db import UnitOfWork
from omo.ingest import service as ingest
from omo.ingest.schemas import EnrolResult
from omo.members.schemas import MemberUpsert

ADMIN = Principal("test")
_seq = itertools.count(1)
T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def store(uow: UnitOfWork, code: str = "TPE-101", region: str = "台北市") -> int:
    saved, _ = commerce.save_store(
        uow, code=code, data=StoreUpsert(name=f"門市 {code}", region=region)
    )
    return saved.id


def member_in(**kw: Any) -> MemberUpsert:
    ids = kw.pop("identifiers", None) or [
        {"kind": "phone", "value": kw.pop("phone", "0912-345-678")}
    ]
    return MemberUpsert.model_validate({"identifiers": ids, "name": "王小明", **kw})


def enrol(uow: UnitOfWork, **kw: Any) -> EnrolResult:
    return ingest.enrol_member(uow, data=member_in(**kw), principal=ADMIN, region="TW")


def order_in(**kw: Any) -> OrderIn:
    n = next(_seq)
    data: dict[str, Any] = {
        "channel": "web",
        "external_id": f"W-{n:06d}",
        "ordered_at": (T0 + timedelta(hours=n)).isoformat(),
        "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "150.00"}],
    }
    data.update(kw)
    return OrderIn.model_validate(data)


def record(uow: UnitOfWork, order: OrderIn, principal: Principal = ADMIN) -> OrderResult:
    return ingest.record_order(uow, order=order, principal=principal, currency="TWD", region="TW")


def post_order(uow: UnitOfWork, principal: Principal = ADMIN, **kw: Any) -> OrderResult:
    return record(uow, order_in(**kw), principal)


def money(s: str) -> Decimal:
    return Decimal(s)


def csv_file(path: Path, header: list[str], rows: list[dict[str, Any]]) -> Path:
    """A CSV file to import: the header, then each row's cells (missing ones empty)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, fieldnames=header)
        out.writeheader()
        out.writerows(rows)
    return path
