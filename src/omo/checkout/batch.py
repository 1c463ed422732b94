"""A till's queue of sales sent in one request: after an outage, or the receipts a day's
reconciliation found missing. Each sale is committed as `/checkout/commit` would, in its own
transaction and in the order given, so one refused sale leaves the others recorded; each
answers with its result or its refusal, and a retry of the whole batch changes nothing (a
failure of the database itself ends the request: the sales before it stay recorded, and the
batch sent again finds them)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import Field

from omo.apikeys.service import Principal
from omo.checkout import service as checkout
from omo.checkout.schemas import CommitRequest, CommitResult
from omo.db import UnitOfWork
from omo.shared.errors import DomainError
from omo.shared.money import CENT
from omo.shared.schemas import ReadModel, StrictModel

MAX_SALES = 500


class SalesBatch(StrictModel):
    sales: list[CommitRequest] = Field(
        min_length=1, max_length=MAX_SALES,
        description="committed one by one in this order (oldest first, as they were made)",
    )  # fmt: skip


class BatchItem(ReadModel):
    external_id: str
    status: int = Field(description="201 recorded, 200 recorded before (a retry), else refused")
    result: CommitResult | None = None
    detail: list[dict[str, Any]] | None = Field(
        default=None, description="the refusal, as the single commit answers it"
    )


class BatchResult(ReadModel):
    recorded: int
    replayed: int
    refused: int
    items: list[BatchItem]


def commit_batch(
    uow: UnitOfWork, *, batch: SalesBatch, principal: Principal, currency: str, region: str,
    unit: Decimal = CENT,
) -> BatchResult:  # fmt: skip
    items: list[BatchItem] = []
    for n, req in enumerate(batch.sales):
        try:
            if req.points:
                principal.require("points:write")
            done = checkout.commit(uow, req=req, principal=principal, currency=currency,
                                   region=region, unit=unit)  # fmt: skip
        except DomainError as exc:
            items.append(BatchItem(external_id=req.external_id, status=exc.status_code,
                                   detail=[exc.detail(prefix=("body", "sales", n))]))  # fmt: skip
            continue
        items.append(BatchItem(external_id=req.external_id, status=200 if done.replayed else 201,
                               result=done))  # fmt: skip
    return BatchResult(
        recorded=sum(i.status == 201 for i in items), replayed=sum(i.status == 200 for i in items),
        refused=sum(i.status >= 400 for i in items), items=items,
    )  # fmt: skip
