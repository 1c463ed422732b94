"""Tiers in the database (SQLite + PostgreSQL): upgrade in the order's transaction, the
multiplier on later points, downgrade at review after grace, percentile levels by review, the
member's view and the distribution endpoint."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from omo.db import UnitOfWork
from omo.points import service as points
from omo.shared import clock
from omo.tiers import service as tiers
from omo.tiers.policy import Level, TierProgramme
from tests.factories import T0, csv_file, enrol, post_order

PHONE = "0912-345-678"


def freeze(at: datetime) -> None:
    clock.set_clock(lambda: at)


def buy(uow: UnitOfWork, amount: str, at: datetime, phone: str = PHONE) -> None:
    post_order(
        uow, customer=[{"kind": "phone", "value": phone}], ordered_at=at.isoformat(),
        lines=[{"sku": "S", "quantity": 1, "unit_price": amount}],
    )  # fmt: skip


def test_an_order_that_crosses_a_threshold_upgrades_at_once(uow: UnitOfWork) -> None:
    freeze(T0)
    mid = enrol(uow, phone=PHONE).member.id
    buy(uow, "6000.00", T0)
    assert tiers.member_tier(uow, member_id=mid).level == "member"
    buy(uow, "5000.00", T0)
    view = tiers.member_tier(uow, member_id=mid)
    assert (view.level, view.name, view.next_level, view.missing) == (
        "silver",
        "銀卡",
        "gold",
        Decimal(19_000),
    )
    assert view.benefits.discount_rate == Decimal("0.95")
    assert view.history[0].to_level == "silver"
    assert "meets 銀卡" in view.history[0].reason
    # silver earns ×1.2 from now on: NT$1,000 → 12 points, not 10
    buy(uow, "1000.00", T0)
    history = points.summary(uow, member_id=mid).history
    assert [h.points for h in history if h.kind == "earn"][:1] == [12]


def test_downgrade_waits_for_review_and_grace(uow: UnitOfWork) -> None:
    freeze(T0)
    mid = enrol(uow, phone=PHONE).member.id
    buy(uow, "12000.00", T0)
    assert tiers.member_tier(uow, member_id=mid).level == "silver"
    # a year and a bit later the spend has left the window, but review + grace is not yet over
    freeze(T0 + timedelta(days=380))
    tiers.review(uow)
    assert tiers.member_tier(uow, member_id=mid).level == "silver"
    freeze(T0 + timedelta(days=396))
    assert tiers.review(uow) == 1
    view = tiers.member_tier(uow, member_id=mid)
    assert view.level == "member"
    assert view.history[0].reason.startswith("downgrade at review")
    assert tiers.review(uow) == 0


def test_a_review_lowers_a_level_one_step_at_a_time(uow: UnitOfWork) -> None:
    """降一級: a diamond member who buys nothing more falls to gold past the first review and
    grace, not to the base level, and to silver a review later."""
    from omo.tiers.policy import DEFAULT_PROGRAMME

    tiers.set_programme(uow, actor="t", programme=DEFAULT_PROGRAMME.model_copy(
        update={"downgrade_steps": 1}))  # fmt: skip
    freeze(T0)
    mid = enrol(uow, phone=PHONE).member.id
    buy(uow, "80000.00", T0)
    assert tiers.member_tier(uow, member_id=mid).level == "diamond"
    freeze(T0 + timedelta(days=396))  # review + grace is over; the spend has left the window
    assert tiers.review(uow) == 1
    view = tiers.member_tier(uow, member_id=mid)
    assert view.level == "gold" and view.history[0].reason.startswith("downgrade at review")
    freeze(T0 + timedelta(days=500))  # before gold's own review and grace
    assert tiers.review(uow) == 0
    freeze(T0 + timedelta(days=396 + 396))
    assert tiers.review(uow) == 1
    assert tiers.member_tier(uow, member_id=mid).level == "silver"


def test_a_level_kept_by_less_than_reaches_it(uow: UnitOfWork) -> None:
    """Silver reached at 10,000 and kept by 6,000: a member who spent 7,000 in the year to
    their review keeps silver past grace; one who spent 5,000 goes down, the reason naming
    what would have kept it."""
    from omo.tiers.policy import DEFAULT_PROGRAMME

    levels = list(DEFAULT_PROGRAMME.levels)
    levels[1] = levels[1].model_copy(update={"keep_threshold": Decimal(6_000)})
    tiers.set_programme(uow, actor="t", programme=DEFAULT_PROGRAMME.model_copy(
        update={"levels": levels}))  # fmt: skip
    freeze(T0)
    keeps, falls = (enrol(uow, phone=p).member.id for p in ("0912-000-001", "0912-000-002"))
    for phone in ("0912-000-001", "0912-000-002"):
        buy(uow, "12000.00", T0, phone=phone)
    freeze(T0 + timedelta(days=200))
    buy(uow, "7000.00", T0 + timedelta(days=200), phone="0912-000-001")
    buy(uow, "5000.00", T0 + timedelta(days=200), phone="0912-000-002")
    freeze(T0 + timedelta(days=380))  # the 12,000 has left the window: what each would miss
    assert [tiers.member_tier(uow, member_id=m).to_keep for m in (keeps, falls)] == [0, 1000]
    freeze(T0 + timedelta(days=396))  # review + grace is over
    tiers.review(uow)
    assert tiers.member_tier(uow, member_id=keeps).level == "silver"
    fell = tiers.member_tier(uow, member_id=falls)
    assert fell.level == "member" and "misses 銀卡 (spend ≥ 6000)" in fell.history[0].reason
    assert fell.to_keep is None  # the base level is kept by anything


def test_what_keeps_a_level_counts_only_what_will_still_be_in_the_window_at_review(
    uow: UnitOfWork,
) -> None:
    """6,000 on day 0 and 6,000 on day 100 reach silver (10,000) on day 100, reviewed a year
    later. The year's window holds 12,000, but at the review the day-0 purchase will have
    left it: 4,000 is still needed to keep silver, not 0. Past the review, in grace, the
    window ending now counts."""
    freeze(T0)
    mid = enrol(uow, phone=PHONE).member.id
    buy(uow, "6000.00", T0)
    freeze(T0 + timedelta(days=100))
    buy(uow, "6000.00", T0 + timedelta(days=100))
    view = tiers.member_tier(uow, member_id=mid)
    assert (view.level, view.window_spend, view.to_keep) == ("silver", 12_000, 4_000)
    freeze(T0 + timedelta(days=200))
    buy(uow, "4000.00", T0 + timedelta(days=200))
    assert tiers.member_tier(uow, member_id=mid).to_keep == 0
    freeze(T0 + timedelta(days=470))  # past the review, in grace: the day-100 sale has left
    view = tiers.member_tier(uow, member_id=mid)
    assert (view.level, view.window_spend, view.to_keep) == ("silver", 4_000, 6_000)


def test_one_large_order_reaches_a_level_and_its_return_takes_it_back(uow: UnitOfWork) -> None:
    """單筆滿30,000直升金卡: two orders of 20,000 do not reach it, one of 30,000 does, at once;
    refunding 6,000 of that order leaves its net below the bar, and the upgrade goes with it."""
    from omo.checkout.refunds import RefundLine, RefundRequest, refund

    tiers.set_programme(uow, actor="t", programme=TierProgramme(levels=[
        Level(code="member", name="一般會員"),
        Level(code="gold", name="金卡", metric="single_order", threshold=Decimal(30_000)),
    ]))  # fmt: skip
    freeze(T0)
    mid = enrol(uow, phone=PHONE).member.id
    buy(uow, "20000.00", T0)
    buy(uow, "20000.00", T0)
    assert tiers.member_tier(uow, member_id=mid).level == "member"
    big = post_order(
        uow, customer=[{"kind": "phone", "value": PHONE}], ordered_at=T0.isoformat(),
        lines=[{"sku": "A", "quantity": 1, "unit_price": "24000"},
               {"sku": "B", "quantity": 1, "unit_price": "6000"}],
    )  # fmt: skip
    view = tiers.member_tier(uow, member_id=mid)
    assert (view.level, view.to_keep) == ("gold", 0)
    assert "largest order 30000 meets 金卡" in view.history[0].reason
    back = refund(uow, order_id=big.id, actor="t", req=RefundRequest(
        idempotency_key="big-b", lines=[RefundLine(line_no=2, quantity=1)]))  # fmt: skip
    assert back.tier_lowered_to == "member"
    assert tiers.member_tier(uow, member_id=mid).level == "member"
    largest = tiers.distribution(uow, buckets=2, measure="single_order")
    assert largest.quantiles["0.5"] == Decimal(24_000)  # the 30,000 less the 6,000 back
    assert [lv.would_qualify for lv in largest.levels] == [None, 0]
    assert tiers.distribution(uow, buckets=2).quantiles["0.5"] == Decimal(64_000)


def test_percentile_levels_are_placed_by_the_review(uow: UnitOfWork, api: TestClient) -> None:
    freeze(T0)
    programme = TierProgramme(levels=[
        Level(code="base", name="一般"),
        Level(code="top", name="前 25%", metric="percentile", threshold=Decimal("0.25")),
    ])  # fmt: skip
    tiers.set_programme(uow, programme=programme, actor="t")
    phones = [f"0912-000-{n:03d}" for n in range(8)]
    ids = [enrol(uow, phone=p).member.id for p in phones]
    for n, phone in enumerate(phones):
        buy(uow, f"{(n + 1) * 100}.00", T0, phone=phone)
    assert tiers.review(uow) == 2  # the top 2 of 8
    levels = {mid: tiers.member_tier(uow, member_id=mid).level for mid in ids}
    assert [levels[m] for m in ids] == ["base"] * 6 + ["top"] * 2
    dist = api.get("/api/v1/tiers/distribution", params={"buckets": 4}).json()
    assert dist["members"] == 8
    assert sum(b["members"] for b in dist["buckets"]) == 8
    assert {lv["code"]: lv["members"] for lv in dist["levels"]} == {"base": 6, "top": 2}
    assert dist["quantiles"]["0.5"] == "500.00"


def test_the_tiers_api(api: TestClient, uow: UnitOfWork) -> None:
    mid = enrol(uow, phone=PHONE).member.id
    view = api.get(f"/api/v1/members/{mid}/tier").json()
    assert (view["level"], view["next_level"], view["window_spend"]) == ("member", "silver", "0.00")
    assert api.get("/api/v1/members/999999/tier").status_code == 404
    assert api.get("/api/v1/tiers/programme").json()["programme"]["levels"][1]["code"] == "silver"
    bad = api.put(
        "/api/v1/tiers/programme", json={"levels": [{"code": "x", "name": "X", "threshold": 9}]}
    )
    assert bad.status_code == 422
    assert "threshold 0" in bad.json()["detail"][0]["msg"]
    good = {
        "levels": [
            {"code": "m", "name": "會員"},
            {"code": "v", "name": "VIP", "metric": "orders", "threshold": 2},
        ]
    }
    loose = {"levels": [good["levels"][0], {**good["levels"][1], "keep_threshold": 3}]}
    refused = api.put("/api/v1/tiers/programme", json=loose)
    assert refused.status_code == 422 and "keep_threshold" in refused.json()["detail"][0]["msg"]
    long = api.put("/api/v1/tiers/programme", json={**good, "discount_excludes": ["x" * 65]})
    assert long.status_code == 422 and long.json()["detail"][0]["loc"][-2] == "discount_excludes"
    none = api.put("/api/v1/tiers/programme", json={**good, "downgrade_steps": 0})
    assert none.status_code == 422 and none.json()["detail"][0]["loc"][-1] == "downgrade_steps"
    assert api.get("/api/v1/tiers/programme").json()["version"] == 0  # nothing changed
    put = api.put("/api/v1/tiers/programme", json={**good, "discount_excludes": ["禮券"]})
    assert put.json()["version"] == 1 and put.json()["programme"]["discount_excludes"] == ["禮券"]
    assert api.get("/api/v1/tiers/distribution", params={"buckets": 1}).status_code == 422
    odd = api.get("/api/v1/tiers/distribution", params={"measure": "points"})
    assert odd.status_code == 422 and odd.json()["detail"][0]["loc"][-1] == "measure"
    assert api.get("/api/v1/tiers/distribution", params={"measure": "single_order"}).is_success


class _Undo(Exception):
    """Rolls a transaction back after its outcome was read."""


def _placed_by(uow: UnitOfWork, ids: list[int], *, together: bool) -> dict[str, list[Any]]:
    """What evaluating these members writes — all at once (Core) or one by one (the ORM
    path a sale takes) — read inside the transaction, which is then rolled back."""
    now = clock.now()
    seen: dict[str, list[Any]] = {}
    try:
        with uow.write() as session:
            if together:
                tiers.evaluate_many(session, member_ids=ids, now=now)
            else:
                for mid in ids:
                    tiers.evaluate_in(session, member_id=mid, now=now)
            session.flush()
            for name, sql in (
                ("tiers", "SELECT member_id, level, since, review_at, updated_at FROM member_tiers"
                          " ORDER BY member_id"),
                ("changes", "SELECT member_id, from_level, to_level, reason, standing, created_at"
                            " FROM tier_changes ORDER BY member_id, id"),
                ("facts", "SELECT topic, key, payload FROM outbox WHERE topic = 'TierChanged'"
                          " ORDER BY key"),
            ):  # fmt: skip
                seen[name] = [tuple(r) for r in session.execute(sa.text(sql))]
            raise _Undo
    except _Undo:
        pass
    return seen


def test_many_members_placed_at_once_as_one_by_one(uow: UnitOfWork) -> None:
    """evaluate_many writes in Core what evaluate_in writes through the ORM: new rows, level
    changes with their history and outbox facts, moved review dates, untouched rows."""
    freeze(T0)
    down = enrol(uow, phone="0912-000-001").member.id
    buy(uow, "12000.00", T0, phone="0912-000-001")  # silver; down at review + grace
    never = enrol(uow, phone="0912-000-002").member.id  # no row yet
    freeze(T0 + timedelta(days=390))
    gold = enrol(uow, phone="0912-000-003").member.id
    buy(uow, "31000.00", T0 + timedelta(days=390), phone="0912-000-003")
    small = enrol(uow, phone="0912-000-004").member.id
    buy(uow, "600.00", T0 + timedelta(days=390), phone="0912-000-004")
    freeze(T0 + timedelta(days=396))
    ids = [down, never, gold, small]
    together = _placed_by(uow, ids, together=True)
    assert together == _placed_by(uow, ids, together=False)
    assert {r[0]: r[1] for r in together["tiers"]} == {
        down: "member",
        never: "member",
        gold: "gold",
        small: "member",
    }
    assert [(r[0], r[1], r[2]) for r in together["changes"] if r[0] == down][-1] == (
        down, "silver", "member"
    )  # fmt: skip
    assert any(f"tier:{down}:" in r[1] for r in together["facts"])


def test_a_level_given_by_hand_is_held_through_its_day_then_reviewed(
    api: TestClient, uow: UnitOfWork, engine: sa.Engine
) -> None:
    """A migrated VIP keeps gold through the day given, earning as gold; the review then moves
    them to what they qualify for. Given again it changes nothing; it never goes below what the
    member qualifies for, and a member who qualifies for more moves up over it."""
    from omo.apikeys.service import create_key
    from tests.conftest import dump

    freeze(T0)  # 18:00 in Taipei, 15 January
    mid = enrol(uow, phone=PHONE).member.id
    buy(uow, "1000.00", T0)
    give = {"level": "gold", "until": "2026-03-31", "reason": "VIP in the old programme"}
    got = api.put(f"/api/v1/members/{mid}/tier", json=give)
    assert got.status_code == 200, got.text
    view = got.json()
    assert (view["level"], view["review_at"]) == ("gold", "2026-03-31T16:00:00Z")
    assert view["history"][0]["from_level"] == "member"
    assert view["history"][0]["reason"] == (
        "granted until 2026-03-31 by test-all: VIP in the old programme"
    )
    before = dump(engine)
    assert api.put(f"/api/v1/members/{mid}/tier", json=give).json() == view  # again: nothing
    assert dump(engine) == before
    buy(uow, "1000.00", T0)  # as gold: ×1.5
    assert [h.points for h in points.summary(uow, member_id=mid).history if h.kind == "earn"][
        :1] == [15]  # fmt: skip
    with engine.connect() as conn:
        topics = [t for (t,) in conn.execute(sa.text("SELECT topic FROM outbox"))]
    assert topics.count("TierChanged") == 1

    # refusals name the field and change nothing
    reader = create_key(uow, name="r", store_code=None, scopes=["members:read"]).key
    before = dump(engine)
    for body, status, words in [
        ({**give, "level": "platinum"}, 422, "one of member, silver, gold, diamond"),
        ({**give, "until": "2026-01-14"}, 422, "a day to come"),
        ({**give, "until": "2026-02-28"}, 422, "through 2026-03-31 already"),
        ({**give, "until": "2031-02-01"}, 422, "at most 5 years"),
        ({**give, "reason": ""}, 422, "reason"),
        ({"level": "gold", "until": "2026-03-31"}, 422, "reason"),
        ({**give, "colour": "red"}, 422, "colour"),
    ]:
        r = api.put(f"/api/v1/members/{mid}/tier", json=body)
        assert r.status_code == status and words in r.text, (body, r.text)
    assert api.put("/api/v1/members/999999/tier", json=give).status_code == 404
    denied = api.put(f"/api/v1/members/{mid}/tier", json=give,
                     headers={"Authorization": f"Bearer {reader}"})  # fmt: skip
    assert denied.status_code == 403
    assert dump(engine) == before

    # through the day and the grace, the review moves them to what they qualify for
    freeze(T0 + timedelta(days=75 + 30))
    tiers.review(uow)
    assert tiers.member_tier(uow, member_id=mid).level == "gold"  # grace not over
    freeze(T0 + timedelta(days=76 + 30))
    tiers.review(uow)
    view2 = tiers.member_tier(uow, member_id=mid)
    assert (view2.level, view2.history[0].reason[:19]) == ("member", "downgrade at review")

    # never below what the member qualifies for; and more spend moves up over a grant
    buy(uow, "12000.00", T0 + timedelta(days=106))
    assert tiers.member_tier(uow, member_id=mid).level == "silver"
    low = api.put(f"/api/v1/members/{mid}/tier",
                  json={**give, "level": "member", "until": "2026-12-31"})  # fmt: skip
    assert low.status_code == 422 and "holds 銀卡 (silver)" in low.text
    assert api.put(f"/api/v1/members/{mid}/tier",
                   json={**give, "level": "silver", "until": "2027-06-30"}).status_code == 200  # fmt: skip
    changes = len(tiers.member_tier(uow, member_id=mid).history)
    longer = api.put(f"/api/v1/members/{mid}/tier",
                     json={**give, "level": "silver", "until": "2027-07-31"}).json()  # fmt: skip
    assert (longer["review_at"], len(longer["history"])) == ("2027-07-31T16:00:00Z", changes)
    buy(uow, "30000.00", T0 + timedelta(days=106))
    assert tiers.member_tier(uow, member_id=mid).level == "gold"


def test_levels_imported_from_the_programme_before(
    uow: UnitOfWork, engine: sa.Engine, tmp_path: Any
) -> None:
    """`omo import tiers`: each member's level from the system before, held through a day;
    a bad row refuses the file and names itself; a second import changes nothing."""
    import pytest

    from omo.transfer.importer import ImportRefused, import_file
    from tests.conftest import dump

    freeze(T0)
    alice = enrol(uow, phone="0912-000-001").member.id
    bob = enrol(uow, phone="0912-000-002").member.id
    carl = enrol(uow, identifiers=[{"kind": "email", "value": "carl@example.com"}]).member.id
    buy(uow, "12000.00", T0, phone="0912-000-002")  # bob qualifies for silver
    with engine.begin() as conn:  # as orders imported in bulk leave him: not placed yet
        conn.execute(sa.text("DELETE FROM tier_changes"))
        conn.execute(sa.text("DELETE FROM member_tiers"))

    def write(name: str, rows: list[dict[str, Any]]) -> Any:
        header = ["member_id", "phone", "email", "level", "until", "reason"]
        return csv_file(tmp_path / name, header, rows)

    below = write("below.csv", [
        {"member_id": bob, "level": "member", "until": "2026-12-31", "reason": "r"}])  # fmt: skip
    with pytest.raises(ImportRefused) as refused:
        import_file(uow, kind="tiers", path=below)
    assert "qualifies for 銀卡 (silver); a grant cannot" in refused.value.errors[0].message
    good = write("levels.csv", [
        {"phone": "0912000001", "level": "gold", "until": "2026-12-31", "reason": "VIP"},
        {"member_id": bob, "level": "silver", "until": "2026/06/30", "reason": "kept"},
        {"email": "carl@example.com", "level": "diamond", "until": "2026-03-31", "reason": "x"},
    ])  # fmt: skip
    report = import_file(uow, kind="tiers", path=good)
    assert (report.created, report.unchanged) == (3, 0)
    got = {m: tiers.member_tier(uow, member_id=m) for m in (alice, bob, carl)}
    assert [got[m].level for m in (alice, bob, carl)] == ["gold", "silver", "diamond"]
    assert got[alice].review_at == datetime(2026, 12, 31, 16, 0, tzinfo=got[alice].review_at.tzinfo)
    assert got[alice].history[0].reason == "granted until 2026-12-31 by import: VIP"
    before = dump(engine)
    again = import_file(uow, kind="tiers", path=good)
    assert (again.created, again.unchanged) == (0, 3)
    assert dump(engine) == before

    bad = write("bad.csv", [
        {"member_id": bob, "level": "member", "until": "2026-12-31", "reason": "r"},
        {"phone": "0912-000-001", "level": "platinum", "until": "2026-12-31", "reason": "r"},
        {"email": "carl@example.com", "level": "gold", "until": "2025-12-31", "reason": "r"},
        {"phone": "0912-999-999", "level": "gold", "until": "2026-12-31", "reason": "r"},
        {"phone": "0912-000-001", "level": "gold", "until": "31/12/2026", "reason": "r"},
        {"member_id": bob, "level": "gold", "until": "2026-12-31", "reason": "r"},
        {"member_id": carl, "level": "gold", "until": "2026-12-31"},
        {"member_id": carl, "level": "silver", "until": "2026-12-31", "reason": "r"},
    ])  # fmt: skip
    with pytest.raises(ImportRefused) as refused:
        import_file(uow, kind="tiers", path=bad)
    got_errors = {(e.row, e.column): e.message for e in refused.value.errors}
    assert set(got_errors) == {(2, "level"), (3, "level"), (4, "until"), (5, "phone"),
                               (6, "until"), (7, "member_id"), (8, "reason"),
                               (9, "member_id")}  # fmt: skip
    assert "holds 銀卡 (silver)" in got_errors[2, "level"]
    assert got_errors[7, "member_id"] == "the member is on row 2 too"
    assert dump(engine) == before


def test_a_levels_import_checks_each_member_again_as_it_writes(uow: UnitOfWork) -> None:
    """Between the file's check and its write a sale may have moved a member up: the write
    refuses to take the level away rather than act on what the check saw."""
    import pytest

    from omo.shared.errors import ValidationFailed
    from omo.tiers import grants

    freeze(T0)
    mid = enrol(uow, phone=PHONE).member.id
    checked = grants.ImportedLevel(member_id=mid, level="silver", until="2026-06-30", reason="r")
    buy(uow, "31000.00", T0)  # gold, after the file was checked
    with pytest.raises(ValidationFailed, match=f"member {mid}: the member holds 金卡"):
        grants.grant_many(uow, items=[(mid, checked)], actor="import")
    assert tiers.member_tier(uow, member_id=mid).level == "gold"


def test_levels_move_to_another_database(uow: UnitOfWork, tmp_path: Any) -> None:
    """`omo export tiers` writes each member above the base level, held through the day before
    their review: imported into another database (members first), each holds the same level
    for as long; a member at the base level, a merged one and an erased one stay behind."""
    import csv

    from omo.db import make_engine
    from omo.identity import service as identity
    from omo.privacy import service as privacy
    from omo.settings import Settings
    from omo.tiers import grants
    from omo.transfer.exporter import export
    from omo.transfer.importer import import_file
    from tests.conftest import migrate

    freeze(T0)
    ids = {p: enrol(uow, phone=f"0912-000-00{p}").member.id for p in range(1, 6)}
    buy(uow, "12000.00", T0, phone="0912-000-001")  # silver by spend, reviewed in a year
    vip = grants.TierGrant(level="gold", until=T0.date() + timedelta(days=40), reason="VIP")
    for p in (2, 4, 5):
        grants.grant(uow, member_id=ids[p], req=vip, actor="t")
    identity.merge_use_case(uow, survivor_id=ids[3], absorbed_id=ids[4], note=None, actor="t")
    privacy.erase(uow, member_id=ids[5], actor="dpo")
    freeze(T0 + timedelta(days=3))

    export(uow.engine, "members", tmp_path / "members.csv")
    n = export(uow.engine, "tiers", tmp_path / "tiers.csv")
    with (tmp_path / "tiers.csv").open(encoding="utf-8-sig") as f:
        rows = {r["member"]: r for r in csv.DictReader(f)}
    assert n == len(rows)
    assert {"phone::+886912000001", "phone::+886912000002"} <= set(rows)
    assert rows["phone::+886912000002"]["until"] == str(vip.until)
    assert rows["phone::+886912000002"]["reason"] == f"held since {T0.date()}"
    assert all(r["member"] for r in rows.values())  # the erased one is not there unnamed
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    migrate(url)
    other = UnitOfWork(make_engine(Settings(database_url=url)))
    try:
        import_file(other, kind="members", path=tmp_path / "members.csv")
        moved = import_file(other, kind="tiers", path=tmp_path / "tiers.csv")
        assert (moved.created, moved.rejected_rows) == (n, 0)

        def held(u: UnitOfWork, phone: str) -> tuple[str, datetime]:
            with u.read() as session:
                mid = session.scalar(sa.text(
                    "SELECT member_id FROM member_identifiers WHERE value = :v"), {"v": phone})  # fmt: skip
            t = tiers.member_tier(u, member_id=mid)
            return t.level, t.review_at

        for p in (1, 2):
            assert held(other, f"+88691200000{p}") == held(uow, f"+88691200000{p}"), p
        assert held(other, "+886912000003")[0] == held(uow, "+886912000003")[0] == "member"
        assert held(other, "+886912000001")[0] == "silver"
        assert held(other, "+886912000002")[0] == "gold"
    finally:
        other.engine.dispose()


def test_a_level_is_granted_on_a_leap_day(uow: UnitOfWork) -> None:
    """On 29 February the grant's bound (five years on) has no 29 February: it was a 500."""
    import pytest

    from omo.shared.errors import ValidationFailed
    from omo.tiers import grants

    freeze(datetime.fromisoformat("2028-02-29T10:00:00+08:00"))
    mid = enrol(uow, phone=PHONE).member.id
    vip = grants.TierGrant(level="gold", until=datetime(2033, 2, 28).date(), reason="VIP")
    assert grants.grant(uow, member_id=mid, req=vip, actor="t").level == "gold"
    later = grants.TierGrant(level="gold", until=datetime(2033, 3, 1).date(), reason="VIP")
    with pytest.raises(ValidationFailed, match="at most 5 years ahead"):
        grants.grant(uow, member_id=mid, req=later, actor="t")
