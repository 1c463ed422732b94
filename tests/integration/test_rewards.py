"""Rewards bought with points (SQLite + PostgreSQL): the catalogue, a redemption that spends
points and stock once, refusals that name their reason and change nothing, cancelling, merges,
racing tills, and any sequence of redemptions and cancellations reconciling."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omo.db import UnitOfWork
from omo.identity import service as identity
from omo.points import service as points
from omo.points.schemas import PointsChange
from omo.rewards import service as rewards
from omo.rewards.schemas import RewardIn, RewardRedeem
from omo.shared import clock
from omo.shared.errors import Conflict, NotFound, ValidationFailed
from tests.conftest import dump
from tests.factories import enrol, post_order, store

_phones = iter(range(10**6))


def member(uow: UnitOfWork, pts: int = 1000, *, spend: str | None = None) -> int:
    phone = f"0912{next(_phones):06d}"
    mid = enrol(uow, phone=phone).member.id
    if spend:
        post_order(uow, customer=[{"kind": "phone", "value": phone}],
                   lines=[{"sku": "OLD", "quantity": 1, "unit_price": spend}])  # fmt: skip
    if pts:
        points.adjust(uow, member_id=mid, actor="t",
                      change=PointsChange(points=pts, idempotency_key=f"seed-{mid}", reason="seed"))  # fmt: skip
    return mid


def put(uow: UnitOfWork, code: str, **kw: Any) -> None:
    rewards.put_reward(
        uow, code=code, data=RewardIn.model_validate({"name": code, **kw}), actor="t"
    )


def redeem(uow: UnitOfWork, mid: int, code: str, key: str, quantity: int = 1) -> Any:
    req = RewardRedeem(idempotency_key=key, quantity=quantity)
    return rewards.redeem(uow, member_id=mid, code=code, req=req, actor="till")


def available(uow: UnitOfWork, mid: int) -> int:
    return points.summary(uow, member_id=mid, history=0).available


def check(uow: UnitOfWork, stocked: dict[str, int]) -> None:
    """The ledger and the redemptions reconcile, and each reward's stock left plus its units
    out (redeemed, not cancelled) is what was `stocked`."""
    with uow.read() as s:
        assert points.check_ledger(s) == []
        assert rewards.check_redemptions(s) == []
    for code, total in stocked.items():
        reward = rewards.get_reward(uow, code=code)
        assert reward.stock is not None and reward.stock + reward.redeemed == total, reward


def test_a_redemption_spends_points_and_stock_once(uow: UnitOfWork) -> None:
    mid = member(uow, 1000)
    put(uow, "TOTE", kind="gift", points=300, stock=10)
    done = redeem(uow, mid, "TOTE", "k1", quantity=2)
    assert (done.points, done.status, done.points_available, done.replayed) == (
        600, "redeemed", 400, False,
    )  # fmt: skip
    assert rewards.get_reward(uow, code="TOTE").stock == 8
    again = redeem(uow, mid, "TOTE", "k1", quantity=2)  # the till's retry
    assert again.replayed and again.points_available == 400
    assert rewards.get_reward(uow, code="TOTE").redeemed == 2
    with pytest.raises(Conflict, match="another redemption"):
        redeem(uow, mid, "TOTE", "k1", quantity=1)
    history = points.summary(uow, member_id=mid).history
    assert history[0].points == -600 and "TOTE" in (history[0].reason or "")
    check(uow, {"TOTE": 10})


def test_refusals_name_their_reason_and_change_nothing(uow: UnitOfWork, engine: sa.Engine) -> None:
    now = clock.now()
    mid = member(uow, 500)
    put(uow, "OFF", points=10, active=False)
    put(uow, "SOON", points=10, valid_from=(now + timedelta(days=3)).isoformat())
    put(uow, "GONE", points=10, valid_until=(now - timedelta(days=1)).isoformat())
    put(uow, "GOLD", points=10, min_level="gold")
    put(uow, "ONE", points=10, per_member=1)
    put(uow, "LAST", points=10, stock=1)
    put(uow, "DEAR", points=501)
    redeem(uow, mid, "ONE", "one")
    before = dump(engine)
    for code, qty, reason in (
        ("OFF", 1, "reward_inactive"), ("SOON", 1, "reward_not_yet"), ("GONE", 1, "reward_ended"),
        ("GOLD", 1, "tier_too_low"), ("ONE", 1, "over_member_limit"), ("LAST", 2, "out_of_stock"),
        ("DEAR", 1, "insufficient_points"),
    ):  # fmt: skip
        with pytest.raises(ValidationFailed) as refused:
            redeem(uow, mid, code, f"x-{code}", quantity=qty)
        assert refused.value.code == reason, (code, refused.value)
    with pytest.raises(NotFound):
        redeem(uow, mid, "NOPE", "x-nope")
    with pytest.raises(NotFound):
        redeem(uow, 999_999, "LAST", "x-who")
    assert dump(engine) == before


def test_the_catalogue_refuses_what_cannot_be(uow: UnitOfWork, engine: sa.Engine) -> None:
    before = dump(engine)
    with pytest.raises(ValidationFailed, match="no tier level"):
        put(uow, "X", points=10, min_level="platinum")
    for bad in ({"kind": "partner"}, {"partner": "7-11"}, {"points": 0}, {"stock": -1},
                {"valid_from": "2026-02-01T00:00:00Z", "valid_until": "2026-01-01T00:00:00Z"}):  # fmt: skip
        with pytest.raises(ValueError):
            RewardIn.model_validate({"name": "x", "points": 10, **bad})
    assert dump(engine) == before


def test_a_gold_member_may_redeem_a_gold_reward(uow: UnitOfWork) -> None:
    put(uow, "GOLD", points=10, min_level="gold")
    put(uow, "SILVER", points=10, min_level="silver")
    gold = member(uow, 100, spend="40000")
    assert redeem(uow, gold, "GOLD", "g").status == "redeemed"
    assert redeem(uow, gold, "SILVER", "s").status == "redeemed"  # and above


def test_a_level_gone_from_the_programme_admits_no_one_anywhere(uow: UnitOfWork) -> None:
    from omo.tiers import service as tiers
    from omo.tiers.policy import TierProgramme

    put(uow, "GOLD", points=10, min_level="gold")
    put(uow, "ALL", points=10)
    gold = member(uow, 100, spend="40000")
    assert [r.code for r, _ in rewards.on_offer(uow, member_id=gold, limit=9)] == ["ALL", "GOLD"]
    tiers.set_programme(uow, actor="t", programme=TierProgramme.model_validate(
        {"levels": [{"code": "member", "name": "一般"}, {"code": "vip", "name": "VIP",
                                                         "threshold": "5000"}]}))  # fmt: skip
    assert [r.code for r, _ in rewards.on_offer(uow, member_id=gold, limit=9)] == ["ALL"]
    with pytest.raises(ValidationFailed) as refused:  # offered nowhere, and refused alike
        redeem(uow, gold, "GOLD", "g")
    assert refused.value.code == "tier_too_low"


def test_early_access_levels_may_redeem_before_the_others(uow: UnitOfWork) -> None:
    start = clock.now() + timedelta(days=5)
    put(uow, "NEW", points=10, valid_from=start.isoformat(), early_access_days=7)
    diamond, gold = member(uow, 100, spend="90000"), member(uow, 100, spend="40000")
    assert redeem(uow, diamond, "NEW", "d").status == "redeemed"  # the default diamond has it
    with pytest.raises(ValidationFailed) as refused:
        redeem(uow, gold, "NEW", "g")
    assert refused.value.code == "reward_not_yet"
    put(uow, "LATER", points=10, valid_from=(start + timedelta(days=5)).isoformat(),
        early_access_days=7)  # fmt: skip
    with pytest.raises(ValidationFailed) as too_early:
        redeem(uow, diamond, "LATER", "d2")  # ten days before: not yet, even for diamond
    assert too_early.value.code == "reward_not_yet"
    with pytest.raises(ValueError, match="valid_from"):
        RewardIn.model_validate({"name": "x", "points": 1, "early_access_days": 3})


def test_cancelling_gives_points_and_stock_back_once(uow: UnitOfWork) -> None:
    mid = member(uow, 1000)
    put(uow, "TOTE", points=300, stock=5, per_member=1)
    redeem(uow, mid, "TOTE", "k")
    done = rewards.cancel(uow, idempotency_key="k", actor="t")
    assert (done.status, done.points_available, done.replayed) == ("cancelled", 1000, False)
    assert rewards.cancel(uow, idempotency_key="k", actor="t").replayed
    assert available(uow, mid) == 1000
    assert rewards.get_reward(uow, code="TOTE").stock == 5
    assert redeem(uow, mid, "TOTE", "k2").status == "redeemed"  # the limit counts it no more
    with pytest.raises(NotFound):
        rewards.cancel(uow, idempotency_key="nope", actor="t")
    check(uow, {"TOTE": 5})


def test_a_reward_for_points_and_money(api: TestClient, uow: UnitOfWork) -> None:
    """點數加價購: a tumbler for 300 points and NT$99. Two redeemed through the API collect
    198 beside 600 points, said in the answer, the member's list and the RewardRedeemed event;
    a cancel gives both back (the answer still says the 198 to return). A reward of NT$0 or of
    fractions of a cent is refused and nothing is saved; one without money collects none."""
    from omo.messaging.models import OutboxMessage

    mid = member(uow, 1000)
    body = {"name": "隨行杯加價購", "kind": "product", "points": 300, "cash": "99", "stock": 5}
    made = api.put("/api/v1/rewards/TUMBLER", json=body)
    assert made.status_code == 201 and made.json()["cash"] == "99.00"
    for bad in ("0", "9.999"):
        refused = api.put("/api/v1/rewards/FREE", json={**body, "cash": bad})
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "cash"
    assert api.get("/api/v1/rewards/FREE").status_code == 404
    got = api.post(f"/api/v1/members/{mid}/rewards/TUMBLER/redeem",
                   json={"idempotency_key": "cup-1", "quantity": 2, "channel": "pos"})  # fmt: skip
    assert got.status_code == 201, got.text
    assert (got.json()["points"], got.json()["cash"], got.json()["points_available"]) == (
        600, "198.00", 400)  # fmt: skip
    with uow.read() as s:
        event = s.scalars(
            sa.select(OutboxMessage.payload).where(OutboxMessage.topic == "RewardRedeemed")
        ).one()
    assert (event["cash"], event["points"]) == ("198.00", 600)
    listed = api.get(f"/api/v1/members/{mid}/rewards").json()
    assert [(r["reward"], r["cash"]) for r in listed] == [("TUMBLER", "198.00")]
    back = rewards.cancel(uow, idempotency_key="cup-1", actor="t")
    assert (back.cash, back.points_available, back.status) == (Decimal(198), 1000, "cancelled")
    put(uow, "TOTE", points=100)
    assert redeem(uow, mid, "TOTE", "tote-1").cash is None
    check(uow, {"TUMBLER": 5})


def test_a_merge_brings_the_absorbed_members_redemptions(uow: UnitOfWork) -> None:
    put(uow, "ONE", points=10, per_member=1)
    survivor, absorbed = member(uow, 100), member(uow, 100)
    redeem(uow, absorbed, "ONE", "a")
    merge = identity.merge_use_case(
        uow, survivor_id=survivor, absorbed_id=absorbed, note="same", actor="t"
    )
    with pytest.raises(ValidationFailed) as refused:
        redeem(uow, survivor, "ONE", "s")
    assert refused.value.code == "over_member_limit"
    assert [
        r.idempotency_key for r in rewards.redemptions_of(uow, member_id=survivor, limit=9)
    ] == ["a"]
    identity.undo_use_case(uow, merge_id=merge.id, actor="t")
    assert redeem(uow, survivor, "ONE", "s").status == "redeemed"


def test_racing_tills_never_overdraw_stock_or_a_members_limit(uow: UnitOfWork, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    put(uow, "LAST5", points=10, stock=5)
    put(uow, "TWO", points=10, per_member=2)
    buyers = [member(uow, 100) for _ in range(12)]
    one = member(uow, 1000)
    barrier = threading.Barrier(24)
    outcomes: list[tuple[str, str]] = []

    def till(mid: int, code: str, key: str) -> None:
        barrier.wait()
        try:
            outcomes.append((code, redeem(uow, mid, code, key).status))
        except ValidationFailed as exc:
            outcomes.append((code, exc.code or "refused"))

    jobs = [(b, "LAST5", f"l{n}") for n, b in enumerate(buyers)]
    jobs += [(one, "TWO", f"t{n}") for n in range(12)]
    threads = [threading.Thread(target=till, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 24, "a till got an error that is not a refusal"
    last5 = sorted(o for c, o in outcomes if c == "LAST5")
    two = sorted(o for c, o in outcomes if c == "TWO")
    assert last5 == ["out_of_stock"] * 7 + ["redeemed"] * 5
    assert two == ["over_member_limit"] * 10 + ["redeemed"] * 2
    assert rewards.get_reward(uow, code="LAST5").stock == 0
    assert available(uow, one) == 1000 - 20
    check(uow, {"LAST5": 5})


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("redeem"), st.integers(0, 2), st.integers(1, 3)),  # member, quantity
        st.tuples(st.just("cancel"), st.integers(0, 20), st.booleans()),  # n-th, came back
        st.tuples(st.just("fulfil"), st.integers(0, 20), st.just(0)),  # the n-th redemption
        st.tuples(st.just("stock"), st.integers(-3, 3), st.just(0)),  # units added
    ),
    min_size=1,
    max_size=15,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(OPS)
def test_any_sequence_of_redemptions_and_cancellations_reconciles(
    uow: UnitOfWork, ops: list[tuple[str, int, int]]
) -> None:
    """Redemptions, hand-overs, cancellations (with the reward back or not) and stock moves in
    any order: each outcome is the one a model predicts, and stock and points reconcile."""
    from omo.rewards import fulfilment
    from omo.rewards.schemas import RedemptionFulfil, StockChange

    run = f"{id(ops)}-{datetime.now(UTC).timestamp()}"
    code = f"R{abs(hash(run)) % 10**9}"
    put(uow, code, points=70, stock=6, per_member=4)
    mids = [member(uow, 500) for _ in range(3)]
    made: list[tuple[str, int, int]] = []  # key, member, quantity
    cancelled: set[str] = set()
    fulfilled: set[str] = set()
    stocked = 6
    for n, (op, a, b) in enumerate(ops):
        if op == "redeem":
            key = f"{run}-{n}"
            try:
                redeem(uow, mids[a], code, key, quantity=b)
                made.append((key, mids[a], b))
            except ValidationFailed as exc:
                assert exc.code in {"out_of_stock", "over_member_limit", "insufficient_points"}
        elif op == "stock":
            left = rewards.get_reward(uow, code=code).stock
            assert left is not None
            change = StockChange(idempotency_key=f"{run}-{n}", units=a or 1, reason="t")
            if left + change.units < 0:
                with pytest.raises(ValidationFailed, match="cannot write off"):
                    rewards.change_stock(uow, code=code, change=change, actor="t")
            else:
                assert rewards.change_stock(uow, code=code, change=change, actor="t").stock == (
                    left + change.units
                )
                stocked += change.units
        elif made:
            key = made[a % len(made)][0]
            if op == "fulfil":
                if key in cancelled or key in fulfilled:
                    with pytest.raises(ValidationFailed):
                        fulfilment.fulfil(uow, idempotency_key=key, req=RedemptionFulfil(),
                                          actor="t")  # fmt: skip
                else:
                    fulfilment.fulfil(uow, idempotency_key=key, req=RedemptionFulfil(), actor="t")
                    fulfilled.add(key)
            elif key in fulfilled and key not in cancelled and not b:
                with pytest.raises(ValidationFailed, match="handed over"):
                    rewards.cancel(uow, idempotency_key=key, actor="t")
            else:
                rewards.cancel(uow, idempotency_key=key, actor="t", returned=bool(b))
                cancelled.add(key)
    out = [(k, m, q) for k, m, q in made if k not in cancelled]
    assert rewards.get_reward(uow, code=code).stock == stocked - sum(q for _, _, q in out)
    for mid in mids:
        mine = sum(q for _, m, q in out if m == mid)
        assert mine <= 4
        assert available(uow, mid) == 500 - 70 * mine >= 0
    check(uow, {code: stocked})


def test_the_rewards_api(api: TestClient, client: TestClient, uow: UnitOfWork) -> None:
    from omo.apikeys.service import create_key

    store(uow, "TPE-101")
    mid = member(uow, 1000)
    body = {"name": "全家咖啡", "kind": "partner", "partner": "FamilyMart", "points": 120,
            "stock": 3}  # fmt: skip
    r = api.put("/api/v1/rewards/COFFEE", json=body)
    assert r.status_code == 201, r.text
    assert api.put("/api/v1/rewards/COFFEE", json=body).status_code == 200
    assert api.put("/api/v1/rewards/COFFEE", json={**body, "partner": None}).status_code == 422
    assert api.put("/api/v1/rewards/bad code", json=body).status_code in (404, 422)
    assert [x["code"] for x in api.get("/api/v1/rewards?available=true").json()] == ["COFFEE"]
    assert api.get("/api/v1/rewards/NOPE").status_code == 404
    redeem_url = f"/api/v1/members/{mid}/rewards/COFFEE/redeem"
    ok = {"idempotency_key": "app-1", "quantity": 1, "channel": "app", "store": "TPE-101"}
    r = api.post(redeem_url, json=ok)
    assert r.status_code == 201, r.text
    assert (r.json()["points_available"], r.json()["store"]) == (880, "TPE-101")
    assert (
        api.post(redeem_url, json={**ok, "idempotency_key": "app-2", "quantity": 0}).status_code
        == 422
    )
    assert (
        api.post(redeem_url, json={**ok, "idempotency_key": "app-3", "store": "NOPE"}).status_code
        == 404
    )
    r = api.post(redeem_url, json={**ok, "idempotency_key": "app-4", "quantity": 5})
    assert r.status_code == 422 and "out_of_stock" in r.text, r.text
    listed = {x["code"]: x for x in api.get("/api/v1/rewards").json()}
    assert (listed["COFFEE"]["redeemed"], listed["COFFEE"]["stock"]) == (1, 2)
    history = api.get(f"/api/v1/members/{mid}/rewards").json()
    assert [h["idempotency_key"] for h in history] == ["app-1"]
    r = api.post("/api/v1/rewards/redemptions/app-1/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert api.post("/api/v1/rewards/redemptions/nope/cancel").status_code == 404
    reader = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    client.headers.pop("Authorization")  # `api` is this client with an all-scopes key
    r = client.post(redeem_url, json={**ok, "idempotency_key": "r"}, headers={"X-API-Key": reader})
    assert r.status_code == 403
    r = client.put("/api/v1/rewards/X", json=body, headers={"X-API-Key": reader})
    assert r.status_code == 403


def test_a_members_data_export_holds_their_redemptions(uow: UnitOfWork) -> None:
    from omo.privacy import service as privacy

    put(uow, "TOTE", points=10)
    mid = member(uow, 100)
    redeem(uow, mid, "TOTE", "mine")
    redeem(uow, member(uow, 100), "TOTE", "theirs")
    doc = privacy.export(uow, member_id=mid, actor="dpo")
    assert [r["idempotency_key"] for r in doc["tables"]["reward_redemptions"]] == ["mine"]


def test_the_reconciliation_finds_redemptions_that_disagree_with_the_ledger(
    uow: UnitOfWork, engine: sa.Engine
) -> None:
    put(uow, "TOTE", points=10, stock=5)
    mid = member(uow, 100)
    for key in ("a", "b", "c"):
        redeem(uow, mid, "TOTE", key)
    rewards.cancel(uow, idempotency_key="c", actor="t")
    check(uow, {"TOTE": 5})
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE reward_redemptions SET points = 11 WHERE idempotency_key = 'a'")
        )
        conn.execute(sa.text("UPDATE reward_redemptions SET status = 'cancelled' "
                             "WHERE idempotency_key = 'b'"))  # fmt: skip
        conn.execute(sa.text("UPDATE rewards SET stock = -1"))
        conn.execute(
            sa.text("UPDATE reward_redemptions SET fulfilled_at = :at WHERE idempotency_key = 'c'"),
            {"at": "2100-01-01 00:00:00.000000"},
        )
    with uow.read() as s:
        found = rewards.check_redemptions(s)
    assert len(found) == 4, found
    assert any("redemption c: handed over after it was cancelled" in p for p in found)
    assert any("redemption a: 11 points" in p for p in found)
    assert any("redemption b: cancelled, points not given back" in p for p in found)
    assert any("reward TOTE: stock -1" in p for p in found)
