"""The points ledger (SQLite + PostgreSQL): earning on orders, pending → available, FIFO
redemption, expiry, adjustments, refunds, merges, the API, and its invariants under random
sequences of all of them and under concurrent spending."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omo.db import UnitOfWork
from omo.identity import service as identity
from omo.points import ledger
from omo.points import service as points
from omo.points.models import PointsAllocation, PointsEntry
from omo.points.schemas import PointsChange
from omo.shared import clock
from omo.shared.errors import Conflict, ValidationFailed
from tests.factories import T0, enrol, post_order

PHONE = "0912-345-678"


def freeze(at: datetime) -> None:
    clock.set_clock(lambda: at)


def buy(uow: UnitOfWork, amount: str, *, phone: str = PHONE, **kw: object) -> int:
    result = post_order(
        uow, customer=[{"kind": "phone", "value": phone}],
        lines=[{"sku": "S", "quantity": 1, "unit_price": amount}], **kw,
    )  # fmt: skip
    return result.id


def change(points_: int, key: str, reason: str | None = "test") -> PointsChange:
    return PointsChange(points=points_, idempotency_key=key, reason=reason)


def check_invariants(uow: UnitOfWork, member_id: int) -> None:
    """balance = sum of the ledger; every lot's remaining = its points − its allocations ≥ 0."""
    with uow.read() as s:
        entries = list(s.scalars(sa.select(PointsEntry).where(PointsEntry.member_id == member_id)))
        taken: dict[int, int] = {}
        for a in s.scalars(sa.select(PointsAllocation)):
            taken[a.lot_id] = taken.get(a.lot_id, 0) + a.points
        lots = [e for e in entries if e.kind in ledger.CREDIT_KINDS and e.points > 0]
        for lot in lots:
            assert lot.remaining == lot.points - taken.get(lot.id, 0), lot.id
            assert 0 <= lot.remaining <= lot.points
        assert sum(e.points for e in entries) == sum(lot.remaining for lot in lots)
        now = clock.now()
        bal = ledger.balance(s, member_id=member_id, now=now)
        assert bal.available >= 0
        # points past their date count for nothing, swept by the expiry job or not
        live = [lot for lot in lots if lot.expires_at is None or clock.as_utc(lot.expires_at) > now]
        assert bal.total == sum(lot.remaining for lot in live)


def test_an_order_earns_pending_points_that_become_available(uow: UnitOfWork) -> None:
    freeze(T0 + timedelta(days=400))
    mid = enrol(uow, phone=PHONE).member.id
    buy(uow, "1290.00", ordered_at=(T0 + timedelta(days=400)).isoformat())
    view = points.summary(uow, member_id=mid)
    assert (view.available, view.pending) == (0, 12)
    assert view.history[0].kind == "earn"
    assert view.expiring[0].points == 12
    freeze(T0 + timedelta(days=408))
    view = points.summary(uow, member_id=mid)
    assert (view.available, view.pending, view.value) == (12, 0, Decimal("12.00"))
    check_invariants(uow, mid)


def test_cancelled_and_marketplace_orders_earn_nothing(uow: UnitOfWork) -> None:
    mid = enrol(uow, phone=PHONE).member.id
    buy(uow, "5000.00", status="cancelled")
    buy(uow, "5000.00", channel="shopee")
    assert points.summary(uow, member_id=mid).pending == 0


def test_redeem_spends_first_to_expire_first_and_is_idempotent(uow: UnitOfWork) -> None:
    mid = enrol(uow, phone=PHONE).member.id
    freeze(T0)
    first = _grant(uow, mid, 100, "a")  # expires a year after T0
    freeze(T0 + timedelta(days=30))
    second = _grant(uow, mid, 100, "b")
    after = points.redeem(uow, member_id=mid, change=change(150, "till-1:sale-9"), actor="till")
    assert after.available == 50
    retry = points.redeem(uow, member_id=mid, change=change(150, "till-1:sale-9"), actor="till")
    assert retry.available == 50
    with uow.read() as s:
        assert s.get(PointsEntry, first).remaining == 0  # type: ignore[union-attr]
        assert s.get(PointsEntry, second).remaining == 50  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        points.redeem(uow, member_id=mid, change=change(10, "till-1:sale-9"), actor="till")
    with pytest.raises(ValidationFailed) as info:
        points.redeem(uow, member_id=mid, change=change(51, "till-1:sale-10"), actor="till")
    assert info.value.code == "insufficient_points"
    assert points.summary(uow, member_id=mid).available == 50
    check_invariants(uow, mid)


def test_a_cancelled_redemption_returns_points_to_their_lots(uow: UnitOfWork) -> None:
    mid = enrol(uow, phone=PHONE).member.id
    freeze(T0)
    lot = _grant(uow, mid, 100, "a")
    points.redeem(uow, member_id=mid, change=change(80, "sale-1"), actor="till")
    back = points.cancel_redemption(uow, idempotency_key="sale-1", actor="till")
    again = points.cancel_redemption(uow, idempotency_key="sale-1", actor="till")
    assert back.available == again.available == 100
    with uow.read() as s:
        restored = s.get(PointsEntry, lot)
        assert restored is not None
        assert restored.remaining == 100
        assert restored.expires_at == clock.as_utc(back.expiring[0].expires_at)
    check_invariants(uow, mid)


def test_points_expire_once_at_their_date(uow: UnitOfWork) -> None:
    mid = enrol(uow, phone=PHONE).member.id
    freeze(T0)
    _grant(uow, mid, 100, "old")
    freeze(T0 + timedelta(days=200))
    _grant(uow, mid, 40, "new")
    points.redeem(uow, member_id=mid, change=change(30, "sale"), actor="till")
    freeze(T0 + timedelta(days=367))
    assert points.expire_due(uow) == 70
    assert points.expire_due(uow) == 0
    view = points.summary(uow, member_id=mid)
    assert view.available == 40
    assert [e.kind for e in view.history[:1]] == ["expire"]
    check_invariants(uow, mid)


def test_points_past_their_date_are_worth_nothing_before_the_expiry_job(uow: UnitOfWork) -> None:
    """The job writes lots off at night; between their date and the job, no balance counts them
    and no till can spend them."""
    mid = enrol(uow, phone=PHONE).member.id
    freeze(T0)
    _grant(uow, mid, 100, "old")
    freeze(T0 + timedelta(days=200))
    _grant(uow, mid, 40, "new")
    freeze(T0 + timedelta(days=367))  # "old" is past its date; the job has not run
    view = points.summary(uow, member_id=mid)
    assert view.available == 40
    assert [e.points for e in view.expiring] == [40]
    with pytest.raises(ValidationFailed) as refused:
        points.redeem(uow, member_id=mid, change=change(41, "too-much"), actor="till")
    assert refused.value.code == "insufficient_points"
    points.redeem(uow, member_id=mid, change=change(40, "all-of-new"), actor="till")
    assert points.expire_due(uow) == 100
    assert points.summary(uow, member_id=mid).available == 0
    check_invariants(uow, mid)


def test_points_given_back_to_a_lot_that_has_expired_expire_again(uow: UnitOfWork) -> None:
    """A redemption cancelled (or its sale refunded) after its lot expired puts the points back
    into that lot, dates unchanged: the next expiry run takes them too — it once tried the
    lot's expiry key a second time and failed on every run after."""
    mid = enrol(uow, phone=PHONE).member.id
    freeze(T0)
    _grant(uow, mid, 100, "a")
    points.redeem(uow, member_id=mid, change=change(60, "sale-1"), actor="till")
    freeze(T0 + timedelta(days=367))
    assert points.expire_due(uow) == 40
    points.cancel_redemption(uow, idempotency_key="sale-1", actor="till")
    assert points.expire_due(uow) == 60
    assert points.expire_due(uow) == 0
    view = points.summary(uow, member_id=mid)
    assert (view.available, view.pending) == (0, 0)
    assert [e.kind for e in view.history[:3]] == ["expire", "reverse", "expire"]
    check_invariants(uow, mid)


def test_adjustments_need_a_reason_and_cannot_overdraw(uow: UnitOfWork) -> None:
    mid = enrol(uow, phone=PHONE).member.id
    assert (
        points.adjust(uow, member_id=mid, change=change(25, "fix-1"), actor="staff").available == 25
    )
    assert (
        points.adjust(uow, member_id=mid, change=change(25, "fix-1"), actor="staff").available == 25
    )
    with pytest.raises(ValidationFailed, match="say why"):
        points.adjust(uow, member_id=mid, change=change(5, "fix-2", reason=None), actor="staff")
    with pytest.raises(ValidationFailed):
        points.adjust(uow, member_id=mid, change=change(-26, "fix-3"), actor="staff")
    assert (
        points.adjust(uow, member_id=mid, change=change(-20, "fix-4"), actor="staff").available == 5
    )
    check_invariants(uow, mid)


def test_a_refund_takes_back_what_the_order_earned(uow: UnitOfWork) -> None:
    freeze(T0 + timedelta(days=1))
    mid = enrol(uow, phone=PHONE).member.id
    order_id = buy(uow, "1000.00", ordered_at=T0.isoformat())
    freeze(T0 + timedelta(days=10))
    points.redeem(uow, member_id=mid, change=change(4, "sale"), actor="till")
    with uow.write() as s:
        half = points.reverse_for_order(
            s,
            order_id=order_id,
            share=Decimal("0.5"),
            key="refund:1:a",
            now=clock.now(),
            actor="till",
        )
        assert (half.points, half.short) == (5, 0)
        rest = points.reverse_for_order(
            s, order_id=order_id, share=Decimal(1), key="refund:1:b", now=clock.now(), actor="till"
        )
        # 5 left to take back, but only 1 is still there: the rest was spent, and is written off
        assert (rest.points, rest.short) == (1, 4)
        entry = s.scalar(sa.select(PointsEntry).where(PointsEntry.idempotency_key == "refund:1:b"))
        assert entry is not None and "could not be taken back" in (entry.reason or "")
    assert points.summary(uow, member_id=mid).available == 0
    check_invariants(uow, mid)


def test_a_merge_brings_the_points_and_undo_takes_them_back(uow: UnitOfWork) -> None:
    a = enrol(uow, phone=PHONE).member.id
    b = enrol(uow, phone="0922-000-111").member.id
    _grant(uow, a, 10, "a")
    _grant(uow, b, 32, "b")
    merge = identity.merge_use_case(uow, survivor_id=a, absorbed_id=b, note=None, actor="t")
    assert points.summary(uow, member_id=a).available == 42
    assert points.summary(uow, member_id=b).available == 42  # b now reads as a
    identity.undo_use_case(uow, merge_id=merge.id, actor="t")
    assert points.summary(uow, member_id=a).available == 10
    assert points.summary(uow, member_id=b).available == 32


def test_the_points_api(api: TestClient, uow: UnitOfWork) -> None:
    mid = enrol(uow, phone=PHONE).member.id
    r = api.post(
        f"/api/v1/members/{mid}/points/adjust",
        json={"points": 300, "idempotency_key": "k1", "reason": "welcome"},
    )
    assert r.status_code == 200, r.text
    r = api.post(
        f"/api/v1/members/{mid}/points/redeem", json={"points": 120, "idempotency_key": "pos-1"}
    )
    assert r.json()["available"] == 180
    over = api.post(
        f"/api/v1/members/{mid}/points/redeem", json={"points": 999, "idempotency_key": "pos-2"}
    )
    assert over.status_code == 422
    assert over.json()["detail"][0]["type"] == "insufficient_points"
    bad = api.post(
        f"/api/v1/members/{mid}/points/redeem", json={"points": "ten", "idempotency_key": "x"}
    )
    assert bad.status_code == 422
    view = api.get(f"/api/v1/members/{mid}/points").json()
    assert (view["available"], view["pending"], view["value"]) == (180, 0, "180.00")
    assert [h["kind"] for h in view["history"]] == ["redeem", "adjust"]
    assert api.get("/api/v1/members/999999/points").status_code == 404
    cancelled = api.post("/api/v1/points/redemptions/pos-1/cancel")
    assert cancelled.json()["available"] == 300
    assert api.get("/api/v1/points/programme").json()["version"] == 0
    rules = {"spend_per_point": "50", "return_window_days": 0}
    put = api.put("/api/v1/points/programme", json=rules)
    assert put.status_code == 200
    assert put.json()["rules"]["spend_per_point"] == "50.00"
    refused = api.put("/api/v1/points/programme", json={"expiry": "sometimes"})
    assert refused.status_code == 422
    blank = api.put("/api/v1/points/programme", json={**rules, "redeem_excludes": ["禮券", ""]})
    assert blank.status_code == 422 and blank.json()["detail"][0]["loc"][-2] == "redeem_excludes"
    assert api.get("/api/v1/points/programme").json()["version"] == 1  # nothing saved
    for bad in ({"max_redeem_points": 0}, {"min_redeem": 0}, {"redeem_channels": ["fax"]}):
        no = api.put("/api/v1/points/programme", json={**rules, **bad})
        assert no.status_code == 422 and set(no.json()["detail"][0]["loc"]) & set(bad)
    assert api.get("/api/v1/points/programme").json()["version"] == 1
    kept_out = api.put("/api/v1/points/programme", json={**rules, "redeem_excludes": ["禮券"]})
    assert kept_out.json()["rules"]["redeem_excludes"] == ["禮券"]
    wednesday = {"name": "會員日", "starts_on": "2026-01-01", "ends_on": "2026-12-31",
                 "multiplier": "2", "weekdays": [3]}  # fmt: skip
    day_8 = api.put("/api/v1/points/programme",
                    json={**rules, "promotions": [{**wednesday, "weekdays": [0]}]})  # fmt: skip
    assert day_8.status_code == 422 and "weekdays" in day_8.json()["detail"][0]["loc"]
    weekly = api.put("/api/v1/points/programme", json={**rules, "promotions": [wednesday]})
    assert weekly.json()["rules"]["promotions"][0]["weekdays"] == [3]


def test_a_key_without_the_points_scope_cannot_spend(client: TestClient, uow: UnitOfWork) -> None:
    from omo.apikeys.service import create_key

    mid = enrol(uow, phone=PHONE).member.id
    reader = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    r = client.post(
        f"/api/v1/members/{mid}/points/redeem",
        json={"points": 1, "idempotency_key": "k"},
        headers={"X-API-Key": reader},
    )
    assert r.status_code == 403


@pytest.mark.postgres
def test_concurrent_redemptions_never_overspend(uow: UnitOfWork, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    mid = enrol(uow, phone=PHONE).member.id
    _grant(uow, mid, 100, "a")
    results: list[str] = []
    barrier = threading.Barrier(32)

    def spend(n: int) -> None:
        barrier.wait()
        try:
            points.redeem(uow, member_id=mid, change=change(7, f"race-{n}"), actor="till")
            results.append("ok")
        except ValidationFailed:
            results.append("refused")

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 14  # 14 × 7 = 98 ≤ 100 < 105
    assert results.count("refused") == 18
    assert points.summary(uow, member_id=mid).available == 2
    check_invariants(uow, mid)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(1, 500)),
        st.tuples(st.just("redeem"), st.integers(1, 600)),
        st.tuples(st.just("adjust"), st.integers(-300, 300).filter(bool)),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("wait"), st.integers(1, 200)),
        st.tuples(st.just("expire"), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(OPS)
def test_ledger_invariants_hold_for_any_sequence(
    uow: UnitOfWork, ops: list[tuple[str, int]]
) -> None:
    tag = f"{threading.get_ident()}-{clock.now().timestamp()}-{id(ops)}"
    phone = f"09{abs(hash(tag)) % 10**8:08d}"
    mid = enrol(uow, phone=phone).member.id
    freeze(T0)
    now = T0
    redeemed: list[str] = []
    for n, (op, k) in enumerate(ops):
        key = f"{tag}-{n}"
        available = points.summary(uow, member_id=mid, history=0).available
        if op == "grant":
            _grant(uow, mid, k, key)
        elif op == "redeem":
            try:
                points.redeem(uow, member_id=mid, change=change(k, key), actor="t")
                assert k <= available
                redeemed.append(key)
            except ValidationFailed:
                assert k > available
        elif op == "adjust":
            try:
                points.adjust(uow, member_id=mid, change=change(k, key), actor="t")
                assert k > 0 or -k <= available
            except ValidationFailed:
                assert k < 0 and -k > available
        elif op == "cancel" and redeemed:
            points.cancel_redemption(uow, idempotency_key=redeemed[k % len(redeemed)], actor="t")
        elif op == "wait":
            now += timedelta(days=k)
            freeze(now)
        elif op == "expire":
            points.expire_due(uow)
        check_invariants(uow, mid)
    clock.reset_clock()


def _grant(uow: UnitOfWork, member_id: int, points_: int, key: str) -> int:
    """Points available now (a bonus), expiring a year on."""
    with uow.write() as s:
        entry = points.award_bonus(
            s,
            member_id=member_id,
            points=points_,
            key=f"bonus:{key}",
            reason="test",
            now=clock.now(),
        )
        assert entry is not None
        return entry.id


def test_undo_gives_back_what_the_survivor_spent_from_the_absorbed_lots(uow: UnitOfWork) -> None:
    a = enrol(uow, phone=PHONE).member.id
    b = enrol(uow, phone="0922-000-111").member.id
    _grant(uow, a, 10, "a")
    _grant(uow, b, 32, "b")
    merge = identity.merge_use_case(uow, survivor_id=a, absorbed_id=b, note=None, actor="t")
    points.redeem(uow, member_id=a, change=change(30, "x"), actor="t")  # 10 of a's, 20 of b's
    _grant(uow, a, 25, "later")
    identity.undo_use_case(uow, merge_id=merge.id, actor="t")
    assert points.summary(uow, member_id=b).available == 32  # b's points are b's again
    assert points.summary(uow, member_id=a).available == 5  # a covers the 20 from its own
    check_invariants(uow, a)
    check_invariants(uow, b)


def test_undo_is_refused_when_the_survivor_cannot_cover_what_it_spent(uow: UnitOfWork) -> None:
    a = enrol(uow, phone=PHONE).member.id
    b = enrol(uow, phone="0922-000-111").member.id
    _grant(uow, a, 10, "a")
    _grant(uow, b, 32, "b")
    merge = identity.merge_use_case(uow, survivor_id=a, absorbed_id=b, note=None, actor="t")
    points.redeem(uow, member_id=a, change=change(40, "x"), actor="t")
    with pytest.raises(Conflict, match="spent 30"):
        identity.undo_use_case(uow, merge_id=merge.id, actor="t")
    assert points.summary(uow, member_id=a).available == 2  # nothing changed
    with uow.read() as s:
        assert points.check_ledger(s) == []


def _two_members(uow: UnitOfWork, a_points: int, b_points: int) -> tuple[int, int]:
    a = enrol(uow, phone=PHONE).member.id
    b = enrol(uow, phone="0922-000-111").member.id
    _grant(uow, a, a_points, "a")
    _grant(uow, b, b_points, "b")
    return a, b


def _undo_leaves(uow: UnitOfWork, merge_id: int, available: dict[int, int]) -> None:
    """Undo the merge; each member then has the points given, and the ledger reconciles."""
    identity.undo_use_case(uow, merge_id=merge_id, actor="t")
    assert {m: points.summary(uow, member_id=m).available for m in available} == available
    for m in available:
        check_invariants(uow, m)
    with uow.read() as s:
        assert points.check_ledger(s) == []


def test_undo_after_the_absorbed_members_spend_was_given_back(uow: UnitOfWork) -> None:
    """b spends 30 of their points, is merged into a, the redemption is cancelled while merged
    (the 30 go back to b's lot), then the merge is undone: the give-back follows b's debit
    back to b. The undo once took it for a's spending and gave a's own lot 30 points more than
    it ever held."""
    a, b = _two_members(uow, 10, 40)
    points.redeem(uow, member_id=b, change=change(30, "b-sale"), actor="t")
    merge = identity.merge_use_case(uow, survivor_id=a, absorbed_id=b, note=None, actor="t")
    points.cancel_redemption(uow, idempotency_key="b-sale", actor="t")
    _undo_leaves(uow, merge.id, {a: 10, b: 40})


def test_undo_after_the_survivor_spent_and_got_back_the_absorbed_points(uow: UnitOfWork) -> None:
    """a spends 30 while merged (10 of a's, 20 of b's) and the redemption is cancelled before
    the undo: nothing of b's is spent any more, so nothing is taken from a's lots."""
    a, b = _two_members(uow, 10, 32)
    merge = identity.merge_use_case(uow, survivor_id=a, absorbed_id=b, note=None, actor="t")
    points.redeem(uow, member_id=a, change=change(30, "a-sale"), actor="t")
    points.cancel_redemption(uow, idempotency_key="a-sale", actor="t")
    _undo_leaves(uow, merge.id, {a: 10, b: 32})


def test_undo_moves_what_a_later_debit_took_not_a_cancelled_one(uow: UnitOfWork) -> None:
    """While merged, a spends 30 (10 of a's, 20 of b's) and gets them back, is given 20, then
    spends 15 (10 of a's, 5 of b's). The undo moves the 5 the second redemption took onto a's
    new 20; moving 5 of the cancelled one (the first it found on b's lot) left b's lot given
    back more than that redemption took from it."""
    a, b = _two_members(uow, 10, 32)
    merge = identity.merge_use_case(uow, survivor_id=a, absorbed_id=b, note=None, actor="t")
    points.redeem(uow, member_id=a, change=change(30, "a-sale"), actor="t")
    points.cancel_redemption(uow, idempotency_key="a-sale", actor="t")
    _grant(uow, a, 20, "a-later")
    points.redeem(uow, member_id=a, change=change(15, "a-sale-2"), actor="t")
    with uow.read() as s:
        assert points.check_ledger(s) == []
    identity.undo_use_case(uow, merge_id=merge.id, actor="t")
    with uow.read() as s:
        assert points.check_ledger(s) == []
    assert (points.summary(uow, member_id=a).available,
            points.summary(uow, member_id=b).available) == (15, 32)  # fmt: skip
