"""領券中心 (SQLite + PostgreSQL): coupons members claim themselves (CPN-2). A claimable
template is offered to the members who may still claim one; a claim issues one under the
member's key, and is refused with its reason — not offered, over, the member's limit reached,
the budget given out, a level too low — changing nothing."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from omo.apikeys.service import create_key
from omo.coupons import claims
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork
from omo.shared import clock
from omo.shared.errors import Conflict
from tests.conftest import dump
from tests.factories import enrol


def _member(uow: UnitOfWork, n: int) -> int:
    return enrol(uow, phone=f"0912{n:06d}").member.id


def _templates(uow: UnitOfWork) -> None:
    now = clock.now()
    for code, t in {
        "CLAIM50": CouponTemplate(name="領券折50", kind="amount_off", amount=Decimal(50),
                                  claimable=True, per_member_limit=2, max_issued=3,
                                  claim_until=now + timedelta(days=1)),
        "GOLDONLY": CouponTemplate(name="金卡領券", kind="amount_off", amount=Decimal(300),
                                   claimable=True, min_level="gold"),
        "PLAIN": CouponTemplate(name="一般券", kind="amount_off", amount=Decimal(100)),
        "OVER": CouponTemplate(name="已截止", kind="amount_off", amount=Decimal(100),
                               claimable=True, valid_until=now - timedelta(minutes=1)),
    }.items():  # fmt: skip
        coupons.put_template(uow, code=code, template=t)


def test_the_claim_api(api: TestClient, uow: UnitOfWork) -> None:
    _templates(uow)
    first, second, third = (_member(uow, n) for n in (1, 2, 3))
    offered = api.get(f"/api/v1/members/{first}/coupons/claimable")
    assert offered.status_code == 200
    assert [(c["template"], c["held"], c["per_member_limit"], c["left"])
            for c in offered.json()] == [("CLAIM50", 0, 2, 3)]  # fmt: skip
    assert offered.json()[0]["terms"]["min_level"] is None

    def claim(member: int, template: str, key: str) -> object:
        return api.post(f"/api/v1/members/{member}/coupons/claim",
                        json={"template": template, "idempotency_key": key})  # fmt: skip

    one = claim(first, "CLAIM50", "tap-1")
    assert one.status_code == 200, one.text
    assert one.json()["template"] == "CLAIM50" and one.json()["state"] == "usable"
    again = claim(first, "CLAIM50", "tap-1")  # a second tap: the same coupon
    assert again.status_code == 200 and again.json()["code"] == one.json()["code"]
    assert claim(first, "CLAIM50", "tap-2").status_code == 200
    before = dump(uow.engine)
    for member, template, key, status, code in (
        (first, "CLAIM50", "tap-3", 409, "per_member_limit"),
        (first, "PLAIN", "p", 422, "not_claimable"),
        (first, "GOLDONLY", "g", 403, "tier_too_low"),
        (first, "OVER", "o", 409, "claim_closed"),
    ):
        refused = claim(member, template, key)
        assert (refused.status_code, refused.json()["detail"][0]["type"]) == (status, code), (
            refused.text
        )
    assert claim(first, "NOPE", "n").status_code == 404
    for bad in ({"template": "CLAIM50"}, {"template": "bad code", "idempotency_key": "k"},
                {"template": "CLAIM50", "idempotency_key": "k", "extra": 1}):  # fmt: skip
        assert api.post(f"/api/v1/members/{first}/coupons/claim", json=bad).status_code == 422
    assert api.post("/api/v1/members/999999/coupons/claim",
                    json={"template": "CLAIM50", "idempotency_key": "k"}).status_code == 404  # fmt: skip
    assert dump(uow.engine) == before
    assert api.get(f"/api/v1/members/{first}/coupons/claimable").json() == []
    assert claim(second, "CLAIM50", "s").status_code == 200  # the third and last
    assert api.get(f"/api/v1/members/{third}/coupons/claimable").json() == []
    gone = claim(third, "CLAIM50", "t")
    assert (gone.status_code, gone.json()["detail"][0]["type"]) == (409, "budget_exhausted")
    reader = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert (
        api.get(f"/api/v1/members/{third}/coupons/claimable", headers=as_reader).status_code == 200
    )
    assert api.post(f"/api/v1/members/{third}/coupons/claim", headers=as_reader,
                    json={"template": "CLAIM50", "idempotency_key": "r"}).status_code == 403  # fmt: skip
    with uow.read() as s:
        assert coupons.check_counters(s) == []


def test_a_template_is_claimable_or_shared_not_both(api: TestClient) -> None:
    body = {"name": "x", "kind": "amount_off", "amount": "10", "claimable": True,
            "shared_code": True}  # fmt: skip
    both = api.put("/api/v1/coupons/templates/BOTH", json=body)
    assert both.status_code == 422 and "claimable" in both.text
    until = api.put("/api/v1/coupons/templates/UNTIL", json={
        "name": "x", "kind": "amount_off", "amount": "10", "claim_until": "2030-01-01T00:00:00"})  # fmt: skip
    assert until.status_code == 422 and "claim_until" in until.text
    assert api.get("/api/v1/coupons/templates").json() == []


@pytest.mark.parametrize("by", ["claim", "issue"])
def test_taps_racing_on_one_member_get_up_to_the_limit(uow: UnitOfWork, by: str) -> None:
    """Eight claims (or issues to the one member, as journeys' steps make) at once, each
    under its own key, for a coupon of two per member: two are issued, the others are refused
    with the limit, none fails otherwise. Without the member held, PostgreSQL issued all
    eight."""
    coupons.put_template(uow, code="TWO", template=CouponTemplate(
        name="限領兩張", kind="amount_off", amount=Decimal(20), claimable=True,
        per_member_limit=2))  # fmt: skip
    member = _member(uow, 9)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def tap(n: int) -> None:
        barrier.wait()
        if by == "issue":
            got = coupons.issue(uow, template_code="TWO", member_ids=[member], key=f"j-{n}")
            outcomes.append("issued" if got.issued else got.refused[member])
            return
        try:
            claims.claim(uow, member_id=member, template_code="TWO", key=f"race-{n}")
            outcomes.append("issued")
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=tap, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["issued"] * 2 + ["per_member_limit"] * 6, outcomes
    assert len(coupons.member_coupons(uow, member_id=member)) == 2


def test_a_claim_racing_a_batch_issue_keeps_the_limit(uow: UnitOfWork) -> None:
    """A batch issue to a segment holds no member: a claim tapped while the batch's
    transaction is open waits for it and then finds the member's one coupon (refused with the
    limit), where it counted none and issued a second on PostgreSQL."""
    coupons.put_template(uow, code="ONE", template=CouponTemplate(
        name="限領一張", kind="amount_off", amount=Decimal(30), claimable=True))  # fmt: skip
    first, second = _member(uow, 11), _member(uow, 12)
    opened, release = threading.Event(), threading.Event()
    outcome: list[str] = []

    def batch(session: Session) -> None:
        got = coupons.issue_in(session, template_code="ONE", member_ids=[first, second],
                               key="segment")  # fmt: skip
        assert len(got.issued) == 2
        opened.set()
        assert release.wait(10)

    def tap() -> None:
        try:
            claims.claim(uow, member_id=first, template_code="ONE", key="tap")
            outcome.append("issued")
        except Conflict as exc:
            outcome.append(exc.code)

    batcher = threading.Thread(target=lambda: uow.run(batch))
    batcher.start()
    assert opened.wait(10)
    tapper = threading.Thread(target=tap)
    tapper.start()
    time.sleep(0.3)  # the tap reaches the template (PostgreSQL) or the write lock (SQLite)
    release.set()
    batcher.join()
    tapper.join()
    assert outcome == ["per_member_limit"]
    assert len(coupons.member_coupons(uow, member_id=first)) == 1


def test_a_level_s_coupon_is_offered_once_the_member_reaches_it(uow: UnitOfWork) -> None:
    """金卡領券 is offered to a gold member, not to one below."""
    from omo.tiers import grants

    _templates(uow)
    member = _member(uow, 5)
    assert [c.template for c in claims.claimable(uow, member_id=member)] == ["CLAIM50"]
    until = (clock.now() + timedelta(days=30)).date()
    grants.grant(uow, member_id=member, actor="t",
                 req=grants.TierGrant(level="gold", until=until, reason="t"))  # fmt: skip
    assert [c.template for c in claims.claimable(uow, member_id=member)] == [
        "CLAIM50", "GOLDONLY"]  # fmt: skip
    got = claims.claim(uow, member_id=member, template_code="GOLDONLY", key="g")
    assert got.template == "GOLDONLY"
