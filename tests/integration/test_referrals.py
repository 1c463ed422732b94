"""Referrals (SQLite + PostgreSQL): attribution at enrolment; both sides rewarded on the
referee's first qualifying order, pending until its return window passes; a return of that
order takes both bonuses back; the programme's terms (bonuses, minimum, lapse, yearly cap);
and the guards."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omo.checkout.refunds import RefundLine, RefundRequest, refund
from omo.db import UnitOfWork
from omo.points import service as points
from omo.points.rules import PointsRules
from omo.points.schemas import PointsChange
from omo.referrals import service as referrals
from omo.referrals.service import ReferralRead
from omo.shared import clock
from tests.conftest import dump
from tests.factories import enrol, post_order

LINK = "https://shop.example.com/join?ref={code}"
D0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
# orders earn no points of their own here, so a balance is the referral bonuses alone
QUIET = {"spend_per_point": Decimal(1_000_000)}


def at(when: datetime) -> None:
    clock.set_clock(lambda: when)


def rules(uow: UnitOfWork, **kw: Any) -> None:
    points.set_programme(uow, rules=PointsRules(**{**QUIET, **kw}), actor="t")


def join(uow: UnitOfWork, phone: str, code: str | None = None) -> int:
    return enrol(uow, phone=phone, referral_code=code).member.id


def buy(uow: UnitOfWork, phone: str, each: str, when: datetime | None = None) -> int:
    """An order of two units at `each` (a return of one halves it)."""
    return post_order(
        uow, customer=[{"kind": "phone", "value": phone}],
        ordered_at=(when or clock.now()).isoformat(),
        lines=[{"sku": "S", "quantity": 2, "unit_price": each}],
    ).id  # fmt: skip


def give_back(uow: UnitOfWork, order_id: int, key: str, one: bool = False) -> Any:
    lines = [RefundLine(line_no=1, quantity=1)] if one else None
    req = RefundRequest(idempotency_key=key, lines=lines)
    return refund(uow, order_id=order_id, req=req, actor="t")


def brought(uow: UnitOfWork, member_id: int) -> list[ReferralRead]:
    return referrals.code_for(uow, member_id=member_id, link=LINK).referred


def balance(uow: UnitOfWork, member_id: int) -> tuple[int, int]:
    s = points.summary(uow, member_id=member_id)
    return s.available, s.pending


def test_both_sides_are_rewarded_once_pending_until_the_return_window(uow: UnitOfWork) -> None:
    at(D0)
    rules(uow)
    alice = join(uow, "0912-000-001")
    first = referrals.code_for(uow, member_id=alice, link=LINK)
    assert first.code == referrals.code_for(uow, member_id=alice, link=LINK).code
    assert first.link == f"https://shop.example.com/join?ref={first.code}"
    assert (first.referrer_bonus, first.referee_bonus, first.min_order) == (50, 50, 300)
    bob = join(uow, "0912-000-002", first.code.lower())
    buy(uow, "0912-000-002", "100.00")  # NT$200: below the NT$300 minimum
    assert [r.status for r in brought(uow, alice)] == ["pending"]
    qualifying = buy(uow, "0912-000-002", "250.00")
    buy(uow, "0912-000-002", "900.00")
    (r,) = brought(uow, alice)
    assert (r.referee_id, r.status, r.order_id) == (bob, "rewarded", qualifying)
    assert (r.referrer_points, r.referee_points) == (50, 50)
    # pending until the order's 7-day return window passes, so a return can take them back
    assert balance(uow, alice) == (0, 50) and balance(uow, bob) == (0, 50)
    at(D0 + timedelta(days=7, minutes=1))
    assert balance(uow, alice) == (50, 0) and balance(uow, bob) == (50, 0)
    with uow.engine.connect() as conn:
        facts = conn.execute(sa.text(
            "SELECT topic, payload FROM outbox WHERE topic LIKE 'Referral%'")).all()  # fmt: skip
    assert [f.topic for f in facts] == ["ReferralRewarded"]


def test_the_programme_sets_the_bonuses_and_the_minimum(uow: UnitOfWork) -> None:
    at(D0)
    rules(uow, referral_bonus=100, referee_bonus=30, referral_min_order=Decimal(1000))
    alice = join(uow, "0912-000-001")
    terms = referrals.code_for(uow, member_id=alice, link=LINK)
    assert (terms.referrer_bonus, terms.referee_bonus, terms.min_order) == (100, 30, 1000)
    bob = join(uow, "0912-000-002", terms.code)
    buy(uow, "0912-000-002", "450.00")  # NT$900
    assert brought(uow, alice)[0].status == "pending"
    buy(uow, "0912-000-002", "500.00")  # NT$1,000
    assert balance(uow, alice) == (0, 100) and balance(uow, bob) == (0, 30)


def test_a_return_takes_both_bonuses_back_and_the_next_order_qualifies(uow: UnitOfWork) -> None:
    at(D0)
    rules(uow)
    alice = join(uow, "0912-000-001")
    bob = join(uow, "0912-000-002", referrals.code_for(uow, member_id=alice, link=LINK).code)
    first = buy(uow, "0912-000-002", "200.00")  # NT$400
    # one unit back: NT$200 kept, below the minimum — the order no longer qualifies
    part = give_back(uow, first, "r1", one=True)
    assert part.referral_revoked
    (r,) = brought(uow, alice)
    assert (r.status, r.order_id, r.referrer_points) == ("pending", None, None)
    assert r.reason == f"order {first} was returned; the bonuses were taken back"
    assert balance(uow, alice) == (0, 0) and balance(uow, bob) == (0, 0)
    before = dump(uow.engine)
    again = give_back(uow, first, "r1", one=True)  # the same refund, retried
    assert again.replayed and again.referral_revoked  # answered as the first time, undone once
    assert dump(uow.engine) == before
    # the next qualifying order rewards both again, under keys of its own
    second = buy(uow, "0912-000-002", "300.00")
    (r,) = brought(uow, alice)
    assert (r.status, r.order_id) == ("rewarded", second)
    assert balance(uow, alice) == (0, 50) and balance(uow, bob) == (0, 50)
    # a return that leaves the order qualifying changes nothing
    kept = give_back(uow, second, "r2", one=True)  # NT$300 kept
    assert not kept.referral_revoked and brought(uow, alice)[0].status == "rewarded"
    # after the window the bonus is spent; a late return takes back what is left
    at(D0 + timedelta(days=8))
    points.redeem(uow, member_id=alice, change=PointsChange(points=40, idempotency_key="k"),
                  actor="t")  # fmt: skip
    late = give_back(uow, second, "r3")
    assert late.referral_revoked
    assert balance(uow, alice) == (0, 0) and balance(uow, bob) == (0, 0)
    history = points.summary(uow, member_id=alice).history
    assert "40 points could not be taken back (already spent)" in (history[0].reason or "")
    with uow.read() as session:
        assert points.check_ledger(session) == []
        assert referrals.check_referrals(session) == []
    with uow.engine.connect() as conn:
        topics = (
            conn.execute(
                sa.text("SELECT topic FROM outbox WHERE topic LIKE 'Referral%' ORDER BY id")
            )
            .scalars()
            .all()
        )
    assert topics == ["ReferralRewarded", "ReferralRevoked", "ReferralRewarded",
                      "ReferralRevoked"]  # fmt: skip


def test_a_referral_lapses_when_the_first_order_comes_too_late(uow: UnitOfWork) -> None:
    at(D0)
    rules(uow, referral_days=30)
    alice = join(uow, "0912-000-001")
    bob = join(uow, "0912-000-002", referrals.code_for(uow, member_id=alice, link=LINK).code)
    at(D0 + timedelta(days=31))
    buy(uow, "0912-000-002", "100.00", D0 + timedelta(days=29))  # too small
    buy(uow, "0912-000-002", "500.00", D0 + timedelta(days=30, minutes=1))
    (r,) = brought(uow, alice)
    assert (r.status, r.reason) == ("lapsed", "first qualifying order after 30 days")
    assert balance(uow, alice) == (0, 0) and balance(uow, bob) == (0, 0)
    buy(uow, "0912-000-002", "500.00")
    assert brought(uow, alice)[0].status == "lapsed"  # settled: later orders change nothing


def test_the_daily_job_lapses_referrals_whose_time_ran_out(uow: UnitOfWork) -> None:
    at(D0)
    rules(uow)  # no referral_days: nothing ever lapses
    alice = join(uow, "0912-000-001")
    code = referrals.code_for(uow, member_id=alice, link=LINK).code
    join(uow, "0912-000-002", code)
    at(D0 + timedelta(days=20))
    join(uow, "0912-000-003", code)
    at(D0 + timedelta(days=400))
    assert referrals.lapse_due(uow) == 0
    rules(uow, referral_days=30)
    # a week's grace after the 30 days, for an order placed in time and recorded late
    at(D0 + timedelta(days=37, minutes=-1))
    assert referrals.lapse_due(uow) == 0
    at(D0 + timedelta(days=37, minutes=1))
    assert referrals.lapse_due(uow) == 1
    assert referrals.lapse_due(uow) == 0  # again: nothing more
    got = [(r.status, r.reason) for r in brought(uow, alice)]
    assert got == [("lapsed", "no qualifying order within 30 days"), ("pending", None)]
    buy(uow, "0912-000-002", "500.00")  # too late: it stays lapsed, and nobody is paid
    assert brought(uow, alice)[0].status == "lapsed" and balance(uow, alice) == (0, 0)


def test_a_referrer_is_rewarded_up_to_the_yearly_cap(uow: UnitOfWork) -> None:
    at(datetime(2026, 12, 31, 10, 0, tzinfo=UTC))  # 18:00 in Taipei
    rules(uow, referrals_per_year=2)
    alice = join(uow, "0912-000-001")
    code = referrals.code_for(uow, member_id=alice, link=LINK).code
    friends = [f"0912-000-1{n:02d}" for n in range(4)]
    for phone in friends:
        join(uow, phone, code)
    for phone in friends[:3]:
        buy(uow, phone, "200.00")
    got = [(r.status, r.referrer_points, r.referee_points) for r in brought(uow, alice)]
    assert got[:3] == [("rewarded", 50, 50), ("rewarded", 50, 50), ("rewarded", 0, 50)]
    assert brought(uow, alice)[2].reason == "the referrer's 2 a year were reached"
    assert balance(uow, alice)[1] == 100
    at(datetime(2026, 12, 31, 16, 0, tzinfo=UTC))  # 2027-01-01 00:00 in Taipei: a new year
    buy(uow, friends[3], "200.00")
    assert brought(uow, alice)[3].referrer_points == 50


def test_the_yearly_cap_counts_a_merged_members_referrals(api: TestClient, uow: UnitOfWork) -> None:
    at(D0)
    rules(uow, referrals_per_year=1)
    alice, alias = join(uow, "0912-000-001"), join(uow, "0912-000-009")  # one person, two records
    join(uow, "0912-000-101", referrals.code_for(uow, member_id=alias, link=LINK).code)
    buy(uow, "0912-000-101", "200.00")  # rewarded through the second record's code
    merged = api.post(f"/api/v1/members/{alice}/merge", json={"other_member_id": alias})
    assert merged.status_code == 201
    join(uow, "0912-000-102", referrals.code_for(uow, member_id=alice, link=LINK).code)
    buy(uow, "0912-000-102", "200.00")
    assert [r.referrer_points for r in brought(uow, alice)] == [50, 0]  # the cap of 1 held
    assert balance(uow, alice) == (0, 50)


def test_the_guards(api: TestClient, uow: UnitOfWork) -> None:
    alice = enrol(uow, phone="0912-000-001").member.id
    code = api.get(f"/api/v1/members/{alice}/referral").json()["code"]
    own = api.post(
        "/api/v1/members",
        json={"identifiers": [{"kind": "phone", "value": "0912-000-001"}], "referral_code": code},
    )
    assert own.status_code == 200  # an existing member: the code is ignored, not an error
    assert api.get(f"/api/v1/members/{alice}/referral").json()["referred"] == []
    unknown = api.post(
        "/api/v1/members",
        json={
            "identifiers": [{"kind": "phone", "value": "0912-000-003"}],
            "referral_code": "RNOPE",
        },
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["type"] == "unknown_code"
    assert api.get("/api/v1/members/lookup", params={"phone": "0912000003"}).status_code == 404
    # a referee who turns out to be the referrer (merged before their first order) gets nothing
    bob = enrol(uow, phone="0912-000-002", referral_code=code).member.id
    merged = api.post(f"/api/v1/members/{alice}/merge", json={"other_member_id": bob})
    assert merged.status_code == 201
    buy(uow, "0912-000-002", "400.00")
    brought = api.get(f"/api/v1/members/{alice}/referral").json()["referred"]
    assert [(r["referee_id"], r["status"], r["reason"]) for r in brought] == [
        (bob, "rejected", "referrer and referee are one person")
    ]
    assert [h for h in points.summary(uow, member_id=alice).history if h.kind == "bonus"] == []


def test_a_referee_merged_into_someone_else(api: TestClient, uow: UnitOfWork) -> None:
    """A referee who turns out to be an older member was not new: no bonus. One person with two
    referrals (two new records, each referred, merged) is rewarded once."""
    at(D0)
    rules(uow)
    alice, frank = join(uow, "0912-000-001"), join(uow, "0912-000-006")
    code_a = referrals.code_for(uow, member_id=alice, link=LINK).code
    code_f = referrals.code_for(uow, member_id=frank, link=LINK).code
    carl = join(uow, "0912-000-003")  # a member since D0
    at(D0 + timedelta(days=1))
    bob = join(uow, "0912-000-002", code_a)
    erin = join(uow, "0912-000-005", code_f)
    at(D0 + timedelta(days=2))
    dave = join(uow, "0912-000-004", code_a)  # joins after erin's referral was made
    for survivor, absorbed in ((carl, bob), (dave, erin)):
        merged = api.post(f"/api/v1/members/{survivor}/merge", json={"other_member_id": absorbed})
        assert merged.status_code == 201
    buy(uow, "0912-000-002", "200.00")  # bob's phone: carl's now
    buy(uow, "0912-000-004", "200.00")  # dave
    got = {r.referee_id: (r.status, r.reason) for r in brought(uow, alice) + brought(uow, frank)}
    assert got[bob] == ("rejected", f"the referee was already a member (merged into member {carl})")
    assert got[erin] == ("rewarded", None)
    assert got[dave][0] == "rejected" and got[dave][1].startswith(
        "the referee was rewarded through"
    )
    assert balance(uow, frank) == (0, 50) and balance(uow, dave) == (0, 50)
    assert balance(uow, alice) == (0, 0) and balance(uow, carl) == (0, 0)
    with uow.read() as session:
        assert referrals.check_referrals(session) == []


def test_the_api(api: TestClient, uow: UnitOfWork) -> None:
    alice = enrol(uow, phone="0912-000-001").member.id
    got = api.get(f"/api/v1/members/{alice}/referral")
    assert got.status_code == 200
    body = got.json()
    assert body["link"] == f"https://shop.example.com/join?ref={body['code']}"
    assert (body["referrer_bonus"], body["referee_bonus"], body["min_order"]) == (50, 50, "300.00")
    assert api.get("/api/v1/members/999999/referral").status_code == 404
    assert api.get("/api/v1/members/0/referral").status_code == 422


def test_two_first_asks_make_one_code(uow: UnitOfWork, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    alice = enrol(uow, phone="0912-000-001").member.id
    codes: list[str] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(8)

    def ask() -> None:
        gate.wait()
        try:
            codes.append(referrals.code_for(uow, member_id=alice, link=LINK).code)
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(codes)) == 1 and len(codes) == 8


def test_the_yearly_cap_holds_when_friends_buy_at_once(uow: UnitOfWork, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    at(D0)
    rules(uow, referrals_per_year=3)
    alice = join(uow, "0912-000-001")
    code = referrals.code_for(uow, member_id=alice, link=LINK).code
    friends = [f"0912-000-2{n:02d}" for n in range(10)]
    for phone in friends:
        join(uow, phone, code)
    errors: list[BaseException] = []
    gate = threading.Barrier(len(friends))

    def shop(phone: str) -> None:
        gate.wait()
        try:
            buy(uow, phone, "200.00")
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=shop, args=(p,)) for p in friends]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = brought(uow, alice)
    assert sorted(r.referrer_points or 0 for r in got) == [0] * 7 + [50] * 3
    assert all(r.status == "rewarded" and r.referee_points == 50 for r in got)
    assert balance(uow, alice) == (0, 150)


# --- property: any sequence of orders and returns leaves each side with exactly its bonuses -----

MIN = 300
_examples = itertools.count(1)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(0, 2), st.sampled_from(["100", "150", "400"])),
        st.tuples(st.just("return"), st.integers(0, 20), st.booleans()),
        st.tuples(st.just("wait"), st.integers(1, 10), st.just(False)),
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=actions)
def test_orders_and_returns_in_any_order(
    uow: UnitOfWork, steps: list[tuple[str, Any, Any]]
) -> None:
    """A model of each referral: rewarded by the first order of NT$300 or more while pending,
    back to pending when a return leaves that order under NT$300. After every step the
    referrals match the model, each member's bonuses less what was taken back are the bonuses
    of the referrals rewarded now, and the ledger and `omo check`'s referral check are clean."""
    now = D0
    at(now)
    rules(uow)
    run = next(_examples)  # hypothesis reuses the database: new people for each example
    alice = join(uow, f"0913{run:06d}")
    code = referrals.code_for(uow, member_id=alice, link=LINK).code
    phones = [f"0914{run * 3 + n:06d}" for n in range(3)]
    friends = [join(uow, p, code) for p in phones]
    model: dict[int, int | None] = {f: None for f in friends}  # friend → qualifying order
    kept: dict[int, Decimal] = {}  # order → amount kept
    units: dict[int, int] = {}  # order → units not returned
    orders: list[tuple[int, int]] = []  # (order, friend)
    for n, (kind, a, b) in enumerate(steps):
        if kind == "buy":
            order = buy(uow, phones[a], f"{b}.00", now)
            orders.append((order, friends[a]))
            kept[order], units[order] = Decimal(b) * 2, 2
            if model[friends[a]] is None and kept[order] >= MIN:
                model[friends[a]] = order
        elif kind == "return" and orders:
            order, friend = orders[a % len(orders)]
            if units[order] == 0:
                continue
            one = b and units[order] == 2
            give_back(uow, order, f"{run}-{n}", one=one)
            units[order] -= 1 if one else units[order]
            kept[order] = kept[order] / 2 if one else Decimal(0)
            if model[friend] == order and kept[order] < MIN:
                model[friend] = None
        elif kind == "wait":
            now += timedelta(days=a)
            at(now)
        got = {r.referee_id: (r.status, r.order_id) for r in brought(uow, alice)}
        assert got == {
            f: ("rewarded", o) if o is not None else ("pending", None) for f, o in model.items()
        }
        rewarded = sum(o is not None for o in model.values())
        assert sum(balance(uow, alice)) == 50 * rewarded
        for f in friends:
            assert sum(balance(uow, f)) == (50 if model[f] is not None else 0)
        with uow.read() as session:
            assert points.check_ledger(session) == []
            assert referrals.check_referrals(session) == []


def test_the_merchant_sees_referrals_and_what_they_brought(
    api: TestClient, uow: UnitOfWork
) -> None:
    at(D0)
    rules(uow, referral_bonus=100, referee_bonus=30)
    alice, frank = join(uow, "0912-000-001"), join(uow, "0912-000-006")
    code_a = referrals.code_for(uow, member_id=alice, link=LINK).code
    code_f = referrals.code_for(uow, member_id=frank, link=LINK).code
    for phone, code in (("0912-000-101", code_a), ("0912-000-102", code_a),
                        ("0912-000-103", code_f), ("0912-000-104", code_a)):  # fmt: skip
        join(uow, phone, code)
    kept = buy(uow, "0912-000-101", "250.00")  # NT$500, rewarded
    buy(uow, "0912-000-103", "200.00")  # NT$400, rewarded
    returned = buy(uow, "0912-000-102", "200.00")
    give_back(uow, returned, "back")  # rewarded, then taken back: pending again
    give_back(uow, kept, "part", one=True)  # NT$250 kept: below the minimum, taken back too
    buy(uow, "0912-000-101", "200.00")  # rewarded again, NT$400
    at(D0 + timedelta(days=1))
    got = api.get("/api/v1/referrals/summary", params={"from": "2026-03-01T00:00:00Z"})
    assert got.status_code == 200, got.text
    body = got.json()
    assert {k: body[k] for k in ("made", "rewarded", "rejected", "lapsed", "pending")} == {
        "made": 4, "rewarded": 2, "rejected": 0, "lapsed": 0, "pending": 2}  # fmt: skip
    assert (body["conversion"], body["points_given"], body["revenue"]) == (0.5, 260, "800.00")
    assert body["top_referrers"] == [{"member_id": alice, "rewarded": 1},
                                     {"member_id": frank, "rewarded": 1}]  # fmt: skip
    # a period before any of it
    empty = api.get("/api/v1/referrals/summary",
                    params={"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}).json()  # fmt: skip
    assert (empty["made"], empty["conversion"], empty["revenue"]) == (0, 0.0, "0.00")
    listed = api.get("/api/v1/referrals", params={"status": "pending"}).json()
    assert [r["reason"] for r in listed] == [
        None, f"order {returned} was returned; the bonuses were taken back"]  # fmt: skip
    mine = api.get("/api/v1/referrals", params={"member_id": frank}).json()
    assert [r["referrer_id"] for r in mine] == [frank]
    first_page = api.get("/api/v1/referrals", params={"limit": 2}).json()
    rest = api.get("/api/v1/referrals", params={"before": first_page[-1]["id"]}).json()
    assert len(first_page) == 2 and len(rest) == 2 and rest[0]["id"] < first_page[-1]["id"]
    for bad in ({"status": "paid"}, {"limit": 0}, {"before": 0}, {"member_id": "x"}):
        assert api.get("/api/v1/referrals", params=bad).status_code == 422
    backwards = api.get("/api/v1/referrals/summary",
                        params={"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"})  # fmt: skip
    assert backwards.status_code == 422


def _open_review(uow: UnitOfWork, a: int, b: int) -> int:
    """A pair an identity run left for a person to decide (as `omo resolve` queues them)."""
    from omo.identity.models import MatchReview, ResolutionRun

    now = clock.now()
    with uow.write() as session:
        run = ResolutionRun(engine="duckdb", status="done", started_at=now, thresholds={})
        session.add(run)
        session.flush()
        review = MatchReview(member_id=min(a, b), other_member_id=max(a, b), run_id=run.id,
                             match_probability=0.7, match_weight=4.0, weights={},
                             status="pending", created_at=now, updated_at=now)  # fmt: skip
        session.add(review)
        session.flush()
        return review.id


def test_a_referral_waits_for_an_open_identity_review(api: TestClient, uow: UnitOfWork) -> None:
    """Two members an identity run could not tell apart: the referral between them is held on
    the first qualifying order, and settles when a person decides — no bonus if one person,
    both bonuses (on the order that qualified) if two."""
    at(D0)
    rules(uow)
    alice, frank = join(uow, "0912-000-001"), join(uow, "0912-000-006")
    code_a = referrals.code_for(uow, member_id=alice, link=LINK).code
    code_f = referrals.code_for(uow, member_id=frank, link=LINK).code
    bob = join(uow, "0912-000-002", code_a)
    carl = join(uow, "0912-000-003", code_f)
    same, apart = _open_review(uow, alice, bob), _open_review(uow, carl, frank)
    bought = {p: buy(uow, p, "200.00") for p in ("0912-000-002", "0912-000-003")}
    got = {r.referee_id: r for r in brought(uow, alice) + brought(uow, frank)}
    assert got[bob].status == "held" and got[bob].order_id == bought["0912-000-002"]
    assert got[bob].reason == f"possibly one person: identity review {same} is open"
    assert got[carl].status == "held" and balance(uow, frank) == (0, 0)
    summary = api.get("/api/v1/referrals/summary").json()
    assert summary["held"] == 2 and summary["rewarded"] == 0
    assert [r["id"] for r in api.get("/api/v1/referrals", params={"status": "held"}).json()] == [
        got[carl].id, got[bob].id]  # fmt: skip
    buy(uow, "0912-000-003", "200.00")  # a later order does not settle a held referral
    assert brought(uow, frank)[0].status == "held"
    # two people: both bonuses, on the order that qualified, through its return window
    at(D0 + timedelta(days=3))
    assert api.post(f"/api/v1/identity/reviews/{apart}/reject").status_code == 200
    (r,) = brought(uow, frank)
    assert (r.status, r.order_id, r.referrer_points) == ("rewarded", bought["0912-000-003"], 50)
    assert balance(uow, frank) == (0, 50) and balance(uow, carl) == (0, 50)
    at(D0 + timedelta(days=7, minutes=1))
    assert balance(uow, frank) == (50, 0)
    # one person: merged by the decision, and no bonus
    assert api.post(f"/api/v1/identity/reviews/{same}/accept").status_code == 200
    (r,) = brought(uow, alice)
    assert (r.status, r.reason) == ("rejected", "referrer and referee are one person")
    assert balance(uow, alice) == (0, 0)
    with uow.read() as session:
        assert referrals.check_referrals(session) == []


def test_a_held_referral_whose_order_was_returned_waits_again(
    api: TestClient, uow: UnitOfWork
) -> None:
    at(D0)
    rules(uow)
    alice = join(uow, "0912-000-001")
    bob = join(uow, "0912-000-002", referrals.code_for(uow, member_id=alice, link=LINK).code)
    review = _open_review(uow, alice, bob)
    order = buy(uow, "0912-000-002", "200.00")
    assert brought(uow, alice)[0].status == "held"
    give_back(uow, order, "back")
    assert brought(uow, alice)[0].status == "held"  # a return does not settle it either
    assert api.post(f"/api/v1/identity/reviews/{review}/reject").status_code == 200
    (r,) = brought(uow, alice)
    assert (r.status, r.order_id, r.settled_at) == ("pending", None, None)
    buy(uow, "0912-000-002", "200.00")  # the next qualifying order rewards both
    assert brought(uow, alice)[0].status == "rewarded"


def test_a_review_decided_during_a_return_reads_the_order_as_returned(
    uow: UnitOfWork, engine: sa.Engine, db_url: str
) -> None:
    """PostgreSQL: a return of a held referral's order holds the friend; the review's decision
    waits for it and then sees the order returned — no bonus on an order given back."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    from omo.identity import reviews

    at(D0)
    rules(uow)
    alice = join(uow, "0912-000-001")
    bob = join(uow, "0912-000-002", referrals.code_for(uow, member_id=alice, link=LINK).code)
    review = _open_review(uow, alice, bob)
    order = buy(uow, "0912-000-002", "200.00")
    assert brought(uow, alice)[0].status == "held"
    refund = engine.connect()  # a return in flight: it holds the friend, as refunds do
    refund.execute(sa.text("SELECT id FROM members WHERE id = :id FOR NO KEY UPDATE"),
                   {"id": bob})  # fmt: skip
    done = threading.Event()
    worker = threading.Thread(
        target=lambda: (reviews.reject(uow, review_id=review, actor="t"), done.set())
    )
    worker.start()
    assert not done.wait(0.5), "the decision did not wait for the return"
    refund.execute(sa.text("UPDATE orders SET refunded_total = total, status = 'refunded' "
                           "WHERE id = :id"), {"id": order})  # fmt: skip
    refund.commit()
    worker.join(10)
    assert done.is_set()
    refund.close()
    (r,) = brought(uow, alice)
    assert (r.status, r.order_id) == ("pending", None)
    assert balance(uow, alice) == (0, 0) and balance(uow, bob) == (0, 0)


def test_a_held_referral_is_settled_by_a_merge_made_another_way(
    api: TestClient, uow: UnitOfWork
) -> None:
    """A pair merged by hand while their review waits: the referral held on the review is
    rejected then, not left held, and the review's late decision changes nothing."""
    at(D0)
    rules(uow)
    alice = join(uow, "0912-000-001")
    bob = join(uow, "0912-000-002", referrals.code_for(uow, member_id=alice, link=LINK).code)
    review = _open_review(uow, alice, bob)
    buy(uow, "0912-000-002", "200.00")
    assert brought(uow, alice)[0].status == "held"
    assert api.post(f"/api/v1/members/{alice}/merge", json={"other_member_id": bob}).is_success
    (r,) = brought(uow, alice)
    assert (r.status, r.reason) == ("rejected", referrals.ONE_PERSON)
    late = api.post(f"/api/v1/identity/reviews/{review}/accept").json()
    assert late["status"] == "obsolete" and brought(uow, alice)[0].status == "rejected"
    assert balance(uow, alice) == (0, 0)


def test_a_held_referral_settles_when_a_run_no_longer_proposes_the_pair(
    uow: UnitOfWork,
) -> None:
    """A later identity run that no longer finds the pair alike makes its review obsolete: two
    people, as far as anyone can tell, so the referral held on it goes ahead (a review the run
    proposes again keeps its referral held)."""
    from omo.identity import resolution

    at(D0)
    rules(uow)
    alice, frank = join(uow, "0912-000-001"), join(uow, "0912-000-006")
    bob = join(uow, "0912-000-002", referrals.code_for(uow, member_id=alice, link=LINK).code)
    carl = join(uow, "0912-000-003", referrals.code_for(uow, member_id=frank, link=LINK).code)
    gone, kept = _open_review(uow, alice, bob), _open_review(uow, carl, frank)
    order = buy(uow, "0912-000-002", "200.00")
    buy(uow, "0912-000-003", "200.00")
    assert [r.status for r in brought(uow, alice) + brought(uow, frank)] == ["held", "held"]
    at(D0 + timedelta(days=2))
    with uow.read() as session:
        run_id = session.scalar(sa.text("SELECT max(id) FROM identity_runs"))
    again = resolution.pair(carl, frank, 0.7, 4.0, {})
    resolution._queue_reviews(uow, run_id, [again])  # the run's last two steps
    resolution._settle_referrals(uow)
    with uow.read() as session:
        statuses = dict(session.execute(sa.text("SELECT id, status FROM identity_reviews")).all())
    assert statuses == {gone: "obsolete", kept: "pending"}
    (r,) = brought(uow, alice)
    assert (r.status, r.order_id, r.referrer_points) == ("rewarded", order, 50)
    assert balance(uow, alice) == (0, 50) and balance(uow, bob) == (0, 50)
    assert brought(uow, frank)[0].status == "held"
    with uow.read() as session:
        assert referrals.check_referrals(session) == []


def test_an_undone_merge_reopens_the_referrals_it_refused(api: TestClient, uow: UnitOfWork) -> None:
    """A merge found wrong and undone: the referrals it refused (one person, or the referee an
    older member) wait again, and pay at once on the order they were refused on if that order
    is the referee's. One rewarded through another referral stays refused (its bonus stayed
    with the merge's survivor), and so does one whose guard still holds."""
    at(D0)
    rules(uow)
    alice, frank, gina = (join(uow, p) for p in ("0912-000-001", "0912-000-006", "0912-000-007"))
    code = {m: referrals.code_for(uow, member_id=m, link=LINK).code for m in (alice, frank, gina)}
    carl = join(uow, "0912-000-003")  # a member since D0
    at(D0 + timedelta(days=1))
    bob = join(uow, "0912-000-002", code[alice])
    hugo = join(uow, "0912-000-008", code[frank])
    ivan = join(uow, "0912-000-009", code[gina])
    jane = join(uow, "0912-000-010", code[gina])
    leo = join(uow, "0912-000-011", code[gina])
    at(D0 + timedelta(days=2))
    mia = join(uow, "0912-000-012", code[gina])  # referred after leo

    def merge(survivor: int, absorbed: int) -> int:
        done = api.post(f"/api/v1/members/{survivor}/merge", json={"other_member_id": absorbed})
        assert done.status_code == 201, done.text
        return int(done.json()["id"])

    wrong = {
        "one person, sale with the referrer": merge(alice, bob),
        "one person, sale with the referee": merge(hugo, frank),
        "older member": merge(carl, ivan),
        "referred twice": merge(mia, leo),
    }
    merge(carl, jane)  # and that one stands
    buy(uow, "0912-000-002", "200.00")  # bob's phone: alice's sale
    hugo_order = buy(uow, "0912-000-008", "200.00")
    buy(uow, "0912-000-009", "200.00")  # ivan's: carl's
    buy(uow, "0912-000-010", "200.00")  # jane's: carl's too, and her referral is refused
    buy(uow, "0912-000-012", "200.00")  # mia's: leo's referral pays (to mia), hers is refused
    got = {r.referee_id: r for r in brought(uow, alice) + brought(uow, frank) + brought(uow, gina)}
    assert [got[m].status for m in (bob, hugo, ivan, jane, mia)] == ["rejected"] * 5
    assert got[leo].status == "rewarded" and balance(uow, mia) == (0, 50)
    before = {m: balance(uow, m) for m in (alice, frank, bob, hugo, ivan, jane, carl)}
    assert set(before.values()) == {(0, 0)}

    at(D0 + timedelta(days=3))
    for merge_id in wrong.values():
        assert api.post(f"/api/v1/merges/{merge_id}/undo").status_code == 200
    got = {r.referee_id: r for r in brought(uow, alice) + brought(uow, frank) + brought(uow, gina)}
    # bob's sale stayed with alice (a survivor keeps what it did while merged): bob waits
    assert (got[bob].status, got[bob].order_id) == ("pending", None)
    assert got[bob].reason == f"merge {wrong['one person, sale with the referrer']} was undone: "\
        "two people again"  # fmt: skip
    # hugo's sale was his own: both sides are paid on it now
    assert (got[hugo].status, got[hugo].order_id) == ("rewarded", hugo_order)
    assert balance(uow, frank) == (0, 50) and balance(uow, hugo) == (0, 50)
    # ivan is his own member again; his sale stayed carl's
    assert got[ivan].status == "pending"
    # jane is still carl's, an older member; mia already had a friend's bonus, through leo's
    assert got[jane].status == "rejected"
    assert (got[mia].status, got[leo].status) == ("rejected", "rewarded")
    assert balance(uow, mia) == (0, 50) and balance(uow, leo) == (0, 0)
    assert balance(uow, alice) == (0, 0) and balance(uow, bob) == (0, 0)
    buy(uow, "0912-000-002", "200.00")  # bob's own first order now
    assert brought(uow, alice)[0].status == "rewarded"
    assert balance(uow, alice) == (0, 50) and balance(uow, bob) == (0, 50)
    with uow.read() as session:
        assert referrals.check_referrals(session) == []
