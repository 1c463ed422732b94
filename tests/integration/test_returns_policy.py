"""The returns policy (SQLite + PostgreSQL): a refund over the amount, or long after the sale,
needs a manager's approval; without it the refund is refused and nothing changes; with it the
refund goes through and says who approved it. Through the API, a key approves with the
`refunds:approve` scope."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from omo.apikeys.service import create_key
from omo.checkout import receipts
from omo.checkout.refunds import RefundLine, RefundRequest, refund
from omo.commerce import returns_policy
from omo.commerce.returns_policy import Policy, needs_approval
from omo.db import UnitOfWork
from omo.shared import clock
from omo.shared.errors import Forbidden
from tests.conftest import dump
from tests.factories import T0, post_order

LINES = [{"sku": "A", "quantity": 1, "unit_price": "2500"},
         {"sku": "B", "quantity": 1, "unit_price": "800"}]  # fmt: skip


def test_the_rule() -> None:
    p = Policy(approval_over=Decimal(1000), approval_after_days=30)
    at = T0
    assert needs_approval(p, amount=Decimal(1000), ordered_at=at, now=at) is None
    assert "more than 1,000" in str(needs_approval(p, amount=Decimal("1000.01"), ordered_at=at,
                                                   now=at))  # fmt: skip
    assert needs_approval(p, amount=Decimal(1), ordered_at=at, now=at + timedelta(days=30)) is None
    late = needs_approval(
        p, amount=Decimal(1), ordered_at=at, now=at + timedelta(days=30, seconds=1)
    )
    assert late is not None and "30 days after the sale" in str(late)
    assert needs_approval(Policy(), amount=Decimal(10**9), ordered_at=at, now=at + timedelta(
        days=3650)) is None  # fmt: skip
    with pytest.raises(ValueError):
        Policy(approval_over=Decimal(0))


def test_a_refund_over_the_policy_needs_a_manager(uow: UnitOfWork, engine: sa.Engine) -> None:
    clock.set_clock(lambda: T0 + timedelta(days=1))
    order = post_order(uow, lines=LINES, ordered_at=T0.isoformat()).id
    whole = RefundRequest(idempotency_key="r-whole")
    assert returns_policy.get_policy(uow).version == 0  # no policy: any refund
    returns_policy.set_policy(uow, policy=Policy(approval_over=Decimal(1000),
                                                 approval_after_days=14), actor="t")  # fmt: skip
    before = dump(engine)
    with pytest.raises(Forbidden) as held:
        refund(uow, order_id=order, req=whole, actor="till-1")
    assert held.value.code == "needs_approval" and "more than 1,000" in held.value.message
    assert dump(engine) == before
    small = RefundRequest(idempotency_key="r-b", lines=[RefundLine(line_no=2, quantity=1)])
    done = refund(uow, order_id=order, req=small, actor="till-1", approved_by="mgr")
    assert done.amount == Decimal(800)
    big = RefundRequest(idempotency_key="r-a", lines=[RefundLine(line_no=1, quantity=1)])
    done = refund(uow, order_id=order, req=big, actor="till-1", approved_by="mgr")
    assert done.amount == Decimal(2500)
    detail = receipts.get_order(uow, order_id=order)
    # the approver is kept where the policy asked for one only
    assert [(r.amount, r.approved_by) for r in detail.refunds] == [
        (Decimal(800), None), (Decimal(2500), "mgr")]  # fmt: skip
    # late: 15 days after the sale, even a small refund waits for a manager
    clock.set_clock(lambda: T0 + timedelta(days=15))
    other = post_order(uow, lines=LINES, ordered_at=T0.isoformat()).id
    with pytest.raises(Forbidden, match="14 days after the sale"):
        refund(uow, order_id=other, actor="till-1",
               req=RefundRequest(idempotency_key="late", lines=[RefundLine(line_no=2, quantity=1)]))  # fmt: skip


def test_the_api_approves_with_a_scope(api: TestClient, uow: UnitOfWork) -> None:
    order = post_order(uow, lines=LINES).id
    till = create_key(uow, name="till", store_code=None, scopes=["orders:write"]).key
    as_till = {"Authorization": f"Bearer {till}"}
    assert api.get("/api/v1/returns/policy").json()["version"] == 0
    put = api.put("/api/v1/returns/policy", json={"approval_over": "1000"})
    assert put.status_code == 200 and put.json()["policy"]["approval_over"] == "1000.00"
    assert api.put("/api/v1/returns/policy", json={"approval_over": "-1"}).status_code == 422
    assert api.put("/api/v1/returns/policy", json={"approval_days": 3}).status_code == 422
    wrong = api.put("/api/v1/returns/policy", json={"coupon_threshold": "sometimes"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "coupon_threshold"
    assert api.get("/api/v1/returns/policy").json()["policy"]["coupon_threshold"] == "keep"
    wrong = api.put("/api/v1/returns/policy", json={"coupons_back": "always"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "coupons_back"
    assert api.get("/api/v1/returns/policy").json()["policy"]["coupons_back"] == "whole_order"
    wrong = api.put("/api/v1/returns/policy", json={"spend_bonus": "never"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "spend_bonus"
    assert api.get("/api/v1/returns/policy").json()["policy"]["spend_bonus"] == "in_proportion"
    refused = api.put("/api/v1/returns/policy", json={}, headers=as_till)
    assert refused.status_code == 403  # the till's key does not set the policy
    weighed = api.post(f"/api/v1/orders/{order}/refund-quote", json={}, headers=as_till)
    assert weighed.status_code == 200, weighed.text
    assert weighed.json()["amount"] == "3300.00" and weighed.json()["whole"]
    assert "more than 1,000" in weighed.json()["needs_approval"]
    one = api.post(f"/api/v1/orders/{order}/refund-quote", json={"lines": [
        {"line_no": 2, "quantity": 1}]}).json()  # fmt: skip
    assert (one["amount"], one["whole"], one["needs_approval"]) == ("800.00", False, None)
    for bad, status in (({"lines": [{"line_no": 9, "quantity": 1}]}, 422),
                        ({"lines": [{"line_no": 2, "quantity": 2}]}, 422),
                        ({"idempotency_key": "k"}, 422)):  # fmt: skip
        assert api.post(f"/api/v1/orders/{order}/refund-quote", json=bad).status_code == status
    assert api.post("/api/v1/orders/999999/refund-quote", json={}).status_code == 404
    body = {"idempotency_key": "k1"}
    held = api.post(f"/api/v1/orders/{order}/refund", json=body, headers=as_till)
    assert held.status_code == 403 and held.json()["detail"][0]["type"] == "needs_approval"
    done = api.post(f"/api/v1/orders/{order}/refund", json=body)  # every scope: approves
    assert done.status_code == 200, done.text
    shown = api.get(f"/api/v1/orders/{order}").json()["refunds"]
    assert [r["approved_by"] for r in shown] == ["test-all"]
