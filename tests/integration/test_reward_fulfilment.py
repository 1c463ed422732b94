"""Rewards owed and given (SQLite + PostgreSQL): handing over at a till, shipping, a partner's
voucher used once, cancelling only what came back, the pick list of what is owed, stock added
once per key without losing a redemption, and what the merchant owes each partner."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from omo.db import UnitOfWork
from omo.rewards import fulfilment, settlement
from omo.rewards import service as rewards
from omo.rewards.schemas import RedemptionFulfil, RewardRedeem, StockChange
from omo.shared import clock
from omo.shared.errors import Conflict, NotFound, ValidationFailed
from tests.conftest import dump
from tests.factories import store
from tests.integration.test_rewards import available, check, member, put

VOUCHER = re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$")


def redeem(uow: UnitOfWork, mid: int, code: str, key: str, **kw: Any) -> Any:
    req = RewardRedeem.model_validate({"idempotency_key": key, **kw})
    return rewards.redeem(uow, member_id=mid, code=code, req=req, actor="till")


def fulfil(uow: UnitOfWork, key: str, **kw: Any) -> Any:
    req = RedemptionFulfil.model_validate(kw)
    return fulfilment.fulfil(uow, idempotency_key=key, req=req, actor="ops")


def use(uow: UnitOfWork, voucher: str, **kw: Any) -> Any:
    return fulfilment.use_voucher(
        uow, voucher=voucher, req=RedemptionFulfil.model_validate(kw), actor="partner"
    )


def refused(reason: str, fn: Any, *args: Any, **kw: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        fn(*args, **kw)
    assert exc.value.code == reason, exc.value


def owed_keys(uow: UnitOfWork, **kw: Any) -> list[str]:
    found = fulfilment.owed(uow, store=kw.get("store"), reward=kw.get("reward"), limit=100)
    return [r.idempotency_key for r in found]


def test_a_till_hands_a_reward_over_and_only_a_return_cancels_it(
    uow: UnitOfWork, engine: sa.Engine
) -> None:
    store(uow, "TPE-101")
    mid = member(uow, 1000)
    put(uow, "TOTE", points=300, stock=5)
    made = redeem(uow, mid, "TOTE", "pos-1", store="TPE-101", handed_over=True)
    assert (made.fulfilled_store, made.voucher) == ("TPE-101", None)
    assert made.fulfilled_at == made.created_at
    assert owed_keys(uow) == []
    before = dump(engine)
    refused("already_fulfilled", rewards.cancel, uow, idempotency_key="pos-1", actor="t")
    refused("already_fulfilled", fulfil, uow, "pos-1")
    assert dump(engine) == before
    back = rewards.cancel(uow, idempotency_key="pos-1", actor="t", returned=True)
    assert (back.status, back.points_available) == ("cancelled", 1000)
    assert rewards.get_reward(uow, code="TOTE").stock == 5
    refused("redemption_cancelled", fulfil, uow, "pos-1")
    check(uow, {"TOTE": 5})


def test_a_gift_is_owed_until_it_is_sent_once(uow: UnitOfWork, engine: sa.Engine) -> None:
    store(uow, "TPE-101")
    store(uow, "TPE-102")
    a, b = member(uow, 1000), member(uow, 1000)
    put(uow, "TOTE", points=100)
    put(uow, "MUG", points=100)
    redeem(uow, a, "TOTE", "web-1", channel="web")
    redeem(uow, b, "MUG", "pos-2", store="TPE-102")
    redeem(uow, a, "MUG", "pos-3", store="TPE-101")
    redeem(uow, b, "TOTE", "web-4")
    rewards.cancel(uow, idempotency_key="web-4", actor="t")
    assert owed_keys(uow) == ["web-1", "pos-2", "pos-3"]
    assert owed_keys(uow, store="TPE-102") == ["pos-2"]
    assert owed_keys(uow, reward="TOTE") == ["web-1"]
    sent = fulfil(uow, "web-1", reference="黑貓 9001-2233")
    assert (sent.reference, sent.fulfilled_store, sent.status) == (
        "黑貓 9001-2233",
        None,
        "redeemed",
    )
    given = fulfil(uow, "pos-2", store="TPE-102")
    assert given.fulfilled_store == "TPE-102" and given.member_id == b
    assert owed_keys(uow) == ["pos-3"]
    before = dump(engine)
    refused("already_fulfilled", fulfil, uow, "web-1", reference="again")
    refused("redemption_cancelled", fulfil, uow, "web-4")
    with pytest.raises(NotFound):
        fulfil(uow, "pos-3", store="NOPE")
    with pytest.raises(NotFound):
        fulfil(uow, "nope")
    assert dump(engine) == before
    history = {r.idempotency_key: r for r in rewards.redemptions_of(uow, member_id=a, limit=9)}
    assert history["web-1"].fulfilled_at is not None and history["pos-3"].fulfilled_at is None


def test_a_partners_voucher_is_used_once(uow: UnitOfWork, engine: sa.Engine) -> None:
    mid = member(uow, 1000)
    put(uow, "COFFEE", kind="partner", partner="FamilyMart", points=120)
    made = redeem(uow, mid, "COFFEE", "app-1", channel="app")
    other = redeem(uow, mid, "COFFEE", "app-2", channel="app")
    assert VOUCHER.match(made.voucher) and made.voucher != other.voucher
    before = dump(engine)
    refused("wrong_fulfilment", fulfil, uow, "app-1")
    with pytest.raises(ValidationFailed) as handed:
        redeem(uow, mid, "COFFEE", "pos-x", handed_over=True)
    assert handed.value.field == "handed_over"
    with pytest.raises(NotFound):
        use(uow, "0000-0000-0000")
    assert dump(engine) == before
    typed = made.voucher.lower().replace("-", " ").replace("0", "o")  # as a person types it
    used = use(uow, typed, reference="FamilyMart store 0042")
    assert (used.idempotency_key, used.fulfilled_at is not None) == ("app-1", True)
    before = dump(engine)
    refused("voucher_used", use, uow, made.voucher)
    refused("voucher_used", rewards.cancel, uow, idempotency_key="app-1", actor="t", returned=True)
    assert dump(engine) == before
    assert owed_keys(uow) == ["app-2"]
    rewards.cancel(uow, idempotency_key="app-2", actor="t")
    refused("redemption_cancelled", use, uow, other.voucher)
    assert available(uow, mid) == 1000 - 120
    check(uow, {})


def test_the_gift_refuses_a_voucher_and_the_voucher_a_gift(uow: UnitOfWork) -> None:
    mid = member(uow, 1000)
    put(uow, "TOTE", points=100)
    assert redeem(uow, mid, "TOTE", "k").voucher is None
    with pytest.raises(NotFound):
        use(uow, "k")


def test_stock_is_added_once_per_key_and_never_below_zero(
    uow: UnitOfWork, engine: sa.Engine
) -> None:
    put(uow, "TOTE", points=10, stock=2)
    put(uow, "FREE", points=10)
    mid = member(uow, 1000)
    redeem(uow, mid, "TOTE", "r1")

    def change(key: str, units: int, code: str = "TOTE") -> Any:
        body = StockChange(idempotency_key=key, units=units, reason="delivery")
        return rewards.change_stock(uow, code=code, change=body, actor="ops")

    first = change("dn-1", 10)
    assert (first.stock, first.replayed) == (11, False)
    assert change("dn-1", 10).replayed is True  # a retry
    assert rewards.get_reward(uow, code="TOTE").stock == 11
    assert change("wo-1", -3).stock == 8
    before = dump(engine)
    with pytest.raises(Conflict):
        change("dn-1", 5)
    for key, units, code, reason in (("wo-2", -9, "TOTE", "stock_below_zero"),
                                     ("x", 4, "FREE", "stock_unlimited")):  # fmt: skip
        refused(reason, change, key, units, code)
    with pytest.raises(NotFound):
        change("y", 1, "NOPE")
    with pytest.raises(ValueError):
        StockChange(idempotency_key="z", units=0, reason="nothing")
    assert dump(engine) == before
    check(uow, {"TOTE": 2 + 10 - 3})


def test_racing_partners_tills_and_deliveries(uow: UnitOfWork, db_url: str) -> None:
    """PostgreSQL: twelve scanners show one voucher, a cancel races a hand-over of one
    redemption, and deliveries race redemptions of the last units."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    put(uow, "COFFEE", kind="partner", partner="FamilyMart", points=10)
    put(uow, "TOTE", points=10, stock=3)
    put(uow, "MUG", points=10)
    one = member(uow, 1000)
    voucher = redeem(uow, one, "COFFEE", "v").voucher
    redeem(uow, one, "MUG", "m")
    buyers = [member(uow, 100) for _ in range(8)]
    jobs: list[tuple[str, Any]] = [("scan", lambda: use(uow, voucher)) for _ in range(12)]
    jobs += [("cancel", lambda: rewards.cancel(uow, idempotency_key="m", actor="t"))] * 4
    jobs += [("fulfil", lambda: fulfil(uow, "m"))] * 4
    jobs += [("buy", lambda b=b, n=n: redeem(uow, b, "TOTE", f"t{n}"))
             for n, b in enumerate(buyers)]  # fmt: skip
    jobs += [("stock", lambda n=n: rewards.change_stock(
        uow, code="TOTE", actor="ops",
        change=StockChange(idempotency_key=f"dn{n}", units=1, reason="delivery")))
        for n in range(4)]  # fmt: skip
    barrier = threading.Barrier(len(jobs))
    outcomes: list[tuple[str, str]] = []

    def run(kind: str, job: Any) -> None:
        barrier.wait()
        try:
            job()
            outcomes.append((kind, "ok"))
        except ValidationFailed as exc:
            outcomes.append((kind, exc.code or "refused"))

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == len(jobs), "a caller got an error that is not a refusal"
    scans = sorted(o for k, o in outcomes if k == "scan")
    assert scans == ["ok"] + ["voucher_used"] * 11
    mug = next(r for r in rewards.redemptions_of(uow, member_id=one, limit=9) if r.reward == "MUG")
    assert (mug.status == "cancelled") != (mug.fulfilled_at is not None)
    bought = sum(1 for k, o in outcomes if k == "buy" and o == "ok")
    assert sorted({o for k, o in outcomes if k == "buy"}) <= ["ok", "out_of_stock"]
    assert bought >= 3 and all(o == "ok" for k, o in outcomes if k == "stock")
    tote = rewards.get_reward(uow, code="TOTE")
    assert (tote.stock, tote.redeemed) == (3 + 4 - bought, bought)
    check(uow, {"TOTE": 3 + 4})


def test_the_partner_settlement_counts_each_event_in_its_period(uow: UnitOfWork) -> None:
    nov, dec, jan = (datetime(2026, m, 10, tzinfo=UTC) for m in (11, 12, 1))
    jan = jan.replace(year=2027)
    month = timedelta(days=31)
    clock.set_clock(lambda: nov)
    mid = member(uow, 10_000)
    put(uow, "COFFEE", kind="partner", partner="FamilyMart", points=120)
    put(uow, "CAKE", kind="partner", partner="85度C", points=300)
    put(uow, "TOTE", points=100)
    vouchers = [redeem(uow, mid, "COFFEE", f"c{n}").voucher for n in range(4)]
    redeem(uow, mid, "CAKE", "k1")
    redeem(uow, mid, "TOTE", "t1")
    use(uow, vouchers[0])
    clock.set_clock(lambda: dec)
    use(uow, vouchers[1])
    use(uow, vouchers[2])
    rewards.cancel(uow, idempotency_key="c3", actor="t")
    redeem(uow, mid, "COFFEE", "c4")
    clock.set_clock(lambda: jan)

    def rows(since: datetime, partner: str | None = None) -> dict[str, tuple[int, ...]]:
        found = settlement.partner_settlement(
            uow, since=since, until=since + month, partner=partner
        )
        return {r.reward: (r.issued, r.used, r.cancelled, r.outstanding) for r in found}

    start = datetime(2026, 11, 1, tzinfo=UTC)
    assert rows(start) == {"CAKE": (1, 0, 0, 1), "COFFEE": (4, 1, 0, 3)}
    assert rows(start + month) == {"CAKE": (0, 0, 0, 1), "COFFEE": (1, 2, 1, 1)}
    assert rows(start, "85度C") == {"CAKE": (1, 0, 0, 1)}
    assert rows(start - month) == {}
    with pytest.raises(ValidationFailed):
        settlement.partner_settlement(uow, since=dec, until=nov, partner=None)


def test_the_fulfilment_api(api: TestClient, client: TestClient, uow: UnitOfWork) -> None:
    from omo.apikeys.service import create_key

    store(uow, "TPE-101")
    mid = member(uow, 1000)
    put(uow, "TOTE", points=100, stock=2)
    put(uow, "COFFEE", kind="partner", partner="FamilyMart", points=120)
    redeem_url = f"/api/v1/members/{mid}/rewards/{{}}/redeem"
    r = api.post(redeem_url.format("TOTE"), json={"idempotency_key": "pos-1", "store": "TPE-101",
                                                  "handed_over": True})  # fmt: skip
    assert r.status_code == 201 and r.json()["fulfilled_store"] == "TPE-101", r.text
    r = api.post(redeem_url.format("TOTE"), json={"idempotency_key": "web-2"})
    assert r.status_code == 201 and r.json()["fulfilled_at"] is None, r.text
    r = api.post(redeem_url.format("COFFEE"), json={"idempotency_key": "app-3"})
    voucher = r.json()["voucher"]
    r = api.post(redeem_url.format("COFFEE"), json={"idempotency_key": "x", "handed_over": True})
    assert r.status_code == 422 and "handed_over" in r.text, r.text
    owed = api.get("/api/v1/rewards/redemptions/owed").json()
    assert [(o["idempotency_key"], o["name"], o["partner"]) for o in owed] == [
        ("web-2", "TOTE", None), ("app-3", "COFFEE", "FamilyMart")]  # fmt: skip
    assert api.get("/api/v1/rewards/redemptions/owed?reward=COFFEE").json()[0]["voucher"] == voucher
    assert api.get("/api/v1/rewards/redemptions/owed?to_send=true").json()[0]["reward"] == "TOTE"
    assert len(api.get(f"/api/v1/rewards/redemptions/owed?member_id={mid}").json()) == 2
    assert api.get(f"/api/v1/rewards/redemptions/owed?member_id={mid + 99}").status_code == 404
    assert api.get("/api/v1/rewards/redemptions/owed?store=bad code").status_code == 422
    assert api.get("/api/v1/rewards/redemptions/owed?limit=0").status_code == 422
    # a reward may be called "redemptions": its own path still reaches it
    assert (
        api.put("/api/v1/rewards/redemptions", json={"name": "x", "points": 1}).status_code == 201
    )
    assert api.get("/api/v1/rewards/redemptions").json()["code"] == "redemptions"
    r = api.post("/api/v1/rewards/redemptions/web-2/fulfil", json={"reference": "黑貓 9001"})
    assert r.status_code == 200 and r.json()["reference"] == "黑貓 9001", r.text
    r = api.post("/api/v1/rewards/redemptions/web-2/fulfil")
    assert r.status_code == 422 and "already_fulfilled" in r.text, r.text
    assert api.post("/api/v1/rewards/redemptions/nope/fulfil").status_code == 404
    r = api.post("/api/v1/rewards/redemptions/app-3/fulfil", json={"store": "TPE-101"})
    assert r.status_code == 422 and "wrong_fulfilment" in r.text, r.text
    r = api.post("/api/v1/rewards/redemptions/web-2/fulfil", json={"shipped": True})
    assert r.status_code == 422, r.text  # unknown field
    r = api.post(f"/api/v1/rewards/vouchers/{voucher}/use", json={"reference": "store 42"})
    assert r.status_code == 200 and r.json()["idempotency_key"] == "app-3", r.text
    r = api.post(f"/api/v1/rewards/vouchers/{voucher}/use")
    assert r.status_code == 422 and "voucher_used" in r.text, r.text
    assert api.post("/api/v1/rewards/vouchers/0000-0000-0000/use").status_code == 404
    r = api.post("/api/v1/rewards/redemptions/pos-1/cancel")
    assert r.status_code == 422 and "already_fulfilled" in r.text, r.text
    r = api.post("/api/v1/rewards/redemptions/pos-1/cancel", json={"returned": True})
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    stock = {"idempotency_key": "dn-1", "units": 5, "reason": "delivery"}
    r = api.post("/api/v1/rewards/TOTE/stock", json=stock)
    assert (r.status_code, r.json()["stock"]) == (200, 1 + 5), r.text
    assert api.post("/api/v1/rewards/TOTE/stock", json=stock).json()["replayed"] is True
    assert api.post("/api/v1/rewards/TOTE/stock", json={**stock, "units": 6}).status_code == 409
    r = api.post("/api/v1/rewards/TOTE/stock", json={**stock, "idempotency_key": "w", "units": -99})
    assert r.status_code == 422 and "stock_below_zero" in r.text, r.text
    assert api.post("/api/v1/rewards/TOTE/stock", json={**stock, "units": 0}).status_code == 422
    assert api.post("/api/v1/rewards/NOPE/stock", json=stock).status_code == 404
    r = api.get("/api/v1/rewards/partners/settlement?partner=FamilyMart")
    assert r.status_code == 200, r.text
    assert [(x["reward"], x["issued"], x["used"]) for x in r.json()] == [("COFFEE", 1, 1)]
    r = api.get(
        "/api/v1/rewards/partners/settlement?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"
    )
    assert r.status_code == 422, r.text
    reader = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    client.headers.pop("Authorization")  # `api` is this client with an all-scopes key
    as_reader = {"X-API-Key": reader}
    assert client.get("/api/v1/rewards/redemptions/owed", headers=as_reader).status_code == 200
    for path, body in (("/api/v1/rewards/redemptions/web-2/fulfil", None),
                       (f"/api/v1/rewards/vouchers/{voucher}/use", None),
                       ("/api/v1/rewards/TOTE/stock", stock)):  # fmt: skip
        assert client.post(path, json=body, headers=as_reader).status_code == 403, path
    r = client.get("/api/v1/rewards/partners/settlement", headers=as_reader)
    assert r.status_code == 403


def test_a_merge_while_waiting_moves_the_hold_to_the_survivor(
    uow: UnitOfWork, engine: sa.Engine, db_url: str
) -> None:
    """PostgreSQL: a cancel waits for the member a merge holds; the merge moves the ledger
    entry to the survivor; the cancel then holds the survivor too, not only the member it
    first looked up (else it would run beside the survivor's own use cases)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    put(uow, "TOTE", points=10)
    absorbed, survivor = member(uow, 100), member(uow, 100)
    redeem(uow, absorbed, "TOTE", "k")
    merge, other = engine.connect(), engine.connect()
    lock = "SELECT id FROM members WHERE id = :id FOR UPDATE"
    merge.execute(sa.text(lock), {"id": absorbed})  # the merge holds the absorbed member
    done = threading.Event()
    worker = threading.Thread(
        target=lambda: (rewards.cancel(uow, idempotency_key="k", actor="t"), done.set())
    )
    worker.start()
    assert not done.wait(0.5), "the cancel did not wait for the merge"
    # the survivor is busy elsewhere: held as use cases hold members (which still lets the
    # merge point the entry at it: a foreign key needs only a key share)
    other.execute(sa.text("SELECT id FROM members WHERE id = :id FOR NO KEY UPDATE"),
                  {"id": survivor})  # fmt: skip
    merge.execute(sa.text("UPDATE points_entries SET member_id = :s WHERE member_id = :a"),
                  {"s": survivor, "a": absorbed})  # fmt: skip
    merge.commit()
    assert not done.wait(0.5), "the cancel went on without holding the survivor"
    other.commit()
    worker.join(10)
    assert done.is_set()
    merge.close()
    other.close()


def test_a_redemption_is_fulfilled_as_it_was_made_whatever_the_reward_becomes(
    uow: UnitOfWork,
) -> None:
    """A reward changed between gift and partner after it was redeemed: a gift redeemed has
    no voucher and is still handed over by its key; a voucher given stays a voucher."""
    mid = member(uow, 1000)
    put(uow, "TOTE", points=10)
    put(uow, "CAFE", kind="partner", partner="FamilyMart", points=10)
    redeem(uow, mid, "TOTE", "gift")
    voucher = redeem(uow, mid, "CAFE", "cafe").voucher
    put(uow, "TOTE", points=10, kind="partner", partner="7-11")
    put(uow, "CAFE", points=10)
    assert sorted(owed_keys(uow)) == ["cafe", "gift"]
    assert fulfilment.owed(uow, store=None, reward=None, limit=9, vouchers=False)[0].voucher is None
    assert fulfil(uow, "gift").fulfilled_at is not None
    refused("wrong_fulfilment", fulfil, uow, "cafe")
    assert use(uow, voucher).idempotency_key == "cafe"
    refused("voucher_used", rewards.cancel, uow, idempotency_key="cafe", actor="t", returned=True)
    found = settlement.partner_settlement(uow, since=None, until=None, partner=None)
    assert [(r.reward, r.issued, r.used) for r in found] == [("CAFE", 1, 1)]
