"""Deterministic identity resolution at write time, merges and exact undo (SQLite + PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from omo.coupons import service as coupons
from omo.coupons.schemas import CouponTemplate
from omo.customer_view import service as customer_view
from omo.db import UnitOfWork
from omo.events.schemas import EventIn
from omo.identity import service as identity
from omo.ingest import service as ingest
from omo.shared.errors import Conflict, ValidationFailed
from tests.conftest import dump
from tests.factories import ADMIN, enrol, post_order, store


def test_three_spellings_of_one_phone_are_one_member(uow: UnitOfWork) -> None:
    first = enrol(uow, phone="0912-345-678")
    second = enrol(uow, phone="0912345678", name="王小明")
    third = enrol(uow, phone="+886 912 345 678", city="台北市")
    assert first.created and not second.created and not third.created
    assert first.member.id == second.member.id == third.member.id
    view = customer_view.customer_view(uow, member_id=first.member.id)
    assert [(i.kind, i.value) for i in view.identifiers] == [("phone", "+886912345678")]
    assert view.member.city == "台北市"


def test_email_case_and_spaces_resolve_to_one_member(uow: UnitOfWork) -> None:
    a = enrol(uow, identifiers=[{"kind": "email", "value": "  Ming.Wang@Example.COM "}])
    b = enrol(uow, identifiers=[{"kind": "email", "value": "ming.wang@example.com"}])
    assert a.member.id == b.member.id


def test_identifiers_naming_two_members_merge_them(uow: UnitOfWork, engine: sa.Engine) -> None:
    by_phone = enrol(uow, phone="0912-000-111", name="林美玲")
    by_mail = enrol(
        uow,
        identifiers=[{"kind": "email", "value": "meiling@example.com"}],
        name=None,
        city="高雄市",
        consents={"email": True},
    )
    both = enrol(
        uow,
        identifiers=[
            {"kind": "phone", "value": "0912000111"},
            {"kind": "email", "value": "MEILING@example.com"},
        ],
    )
    assert both.member.id == by_phone.member.id  # the older record survives
    assert both.merged_member_ids == [by_mail.member.id]
    view = customer_view.customer_view(uow, member_id=by_mail.member.id)
    assert view.member.id == by_phone.member.id and view.requested_id == by_mail.member.id
    assert {i.kind for i in view.identifiers} == {"phone", "email"}
    assert view.member.city == "高雄市"  # the survivor's empty field filled from the other
    assert [c.channel for c in view.consents] == ["email"]
    assert view.merged_member_ids == [by_mail.member.id]
    (merge,) = view.merges
    assert merge.reason == "shared_identifier"
    assert "meiling" not in str(merge.evidence)  # evidence is masked


def test_merge_then_undo_restores_the_exact_prior_state(uow: UnitOfWork, engine: sa.Engine) -> None:
    store(uow)
    a = enrol(uow, phone="0922-111-222", name="陳志豪", consents={"sms": True, "email": False})
    b = enrol(
        uow,
        identifiers=[{"kind": "card", "value": "vip-0001"}],
        name=None,
        birth_date="1990-05-06",
        consents={"email": True},
    )
    post_order(uow, customer=[{"kind": "phone", "value": "0922111222"}], total="300.00")
    post_order(uow, channel="pos", store="TPE-101", customer=[{"kind": "card", "value": "VIP0001"}])
    ingest.record_events(
        uow,
        batch=[
            EventIn.model_validate(
                {"event_id": "e-1", "kind": "view", "occurred_at": "2026-01-02T10:00:00+08:00",
                 "channel": "app", "sku": "SKU-9",
                 "identifiers": [{"kind": "card", "value": "VIP0001"}]}
            )
        ],
        principal=ADMIN,
        region="TW",
    )  # fmt: skip
    coupons.put_template(
        uow,
        code="WELCOME100",
        template=CouponTemplate.model_validate(
            {"name": "滿500減100", "kind": "spend_get_off", "spend": "500", "amount": "100"}
        ),
    )
    held = coupons.issue(uow, template_code="WELCOME100", member_ids=[b.member.id], key="k")
    before = dump(engine)

    merge = identity.merge_use_case(
        uow, survivor_id=a.member.id, absorbed_id=b.member.id, note="same person", actor="staff"
    )
    with engine.connect() as conn:  # the absorbed member's coupon is now the survivor's
        owner = conn.execute(
            sa.text("SELECT member_id FROM coupons WHERE code = :c"), {"c": held.issued[0].code}
        ).scalar()
    assert owner == a.member.id
    merged = customer_view.customer_view(uow, member_id=a.member.id)
    assert merged.stats is not None and merged.stats.order_count == 2
    assert merged.member.birth_date is not None
    assert {c.channel: c.granted for c in merged.consents}["email"] is True  # newer decision
    assert set(merge.moved) == {
        "members.member_identifiers", "commerce.orders", "events.events", "points.points_entries",
        "coupons.coupons", "coupons.coupon_redemptions", "members.member_tags",
        "messaging.messages", "tasks.staff_tasks",
    }  # fmt: skip
    assert len(merge.moved["coupons.coupons"]) == 1
    assert dump(engine) != before

    undone = identity.undo_use_case(uow, merge_id=merge.id, actor="staff")
    assert undone.undone_at is not None
    after = dump(engine)
    after.pop("identity_merges"), before.pop("identity_merges")
    assert after == before


def test_undo_refuses_twice_and_out_of_order(uow: UnitOfWork) -> None:
    a, b, c = (enrol(uow, phone=p) for p in ("0911111111", "0922222222", "0933333333"))
    first = identity.merge_use_case(uow, survivor_id=b.member.id, absorbed_id=c.member.id,
                                    note=None, actor=None)  # fmt: skip
    identity.merge_use_case(uow, survivor_id=a.member.id, absorbed_id=b.member.id, note=None,
                            actor=None)  # fmt: skip
    with pytest.raises(Conflict, match="undo merge"):
        identity.undo_use_case(uow, merge_id=first.id, actor=None)
    with pytest.raises(Conflict):
        identity.merge_use_case(uow, survivor_id=a.member.id, absorbed_id=c.member.id, note=None,
                                actor=None)  # fmt: skip
    with pytest.raises(ValidationFailed):
        identity.merge_use_case(uow, survivor_id=a.member.id, absorbed_id=a.member.id, note=None,
                                actor=None)  # fmt: skip


def test_guest_orders_and_events_are_linked_when_the_person_enrols(uow: UnitOfWork) -> None:
    guest = post_order(
        uow,
        channel="shopee",
        customer=[{"kind": "marketplace_buyer", "namespace": "shopee", "value": "mei_88"}],
    )
    assert guest.member_id is None
    ingest.record_events(
        uow,
        batch=[
            EventIn.model_validate(
                {"event_id": "line-follow-1", "kind": "line_follow",
                 "occurred_at": "2026-01-01T00:00:00Z", "channel": "line",
                 "identifiers": [{"kind": "line_id", "value": "U" + "a" * 32}]}
            )
        ],
        principal=ADMIN,
        region="TW",
    )  # fmt: skip
    joined = enrol(
        uow,
        identifiers=[
            {"kind": "phone", "value": "0955-555-555"},
            {"kind": "marketplace_buyer", "namespace": "shopee", "value": "mei_88"},
            {"kind": "line_id", "value": "U" + "A" * 32},
        ],
    )
    assert joined.linked_guest_orders == 1 and joined.linked_events == 1
    view = customer_view.customer_view(uow, member_id=joined.member.id)
    assert view.stats is not None and view.stats.order_count == 1
    assert {t.type for t in view.timeline} == {"order", "event"}


def test_order_teaches_a_new_identifier_to_its_member(uow: UnitOfWork) -> None:
    m = enrol(uow, phone="0966-123-456")
    post_order(
        uow,
        channel="momo",
        customer=[
            {"kind": "phone", "value": "0966123456"},
            {"kind": "marketplace_buyer", "namespace": "momo", "value": "M778899"},
        ],
    )
    later = post_order(
        uow,
        channel="momo",
        customer=[{"kind": "marketplace_buyer", "namespace": "momo", "value": "M778899"}],
    )
    assert later.member_id == m.member.id


def test_kpis_count_identified_value_and_channel_share(uow: UnitOfWork) -> None:
    store(uow)
    enrol(uow, phone="0912-345-678")
    post_order(uow, customer=[{"kind": "phone", "value": "0912345678"}], total="300.00")
    post_order(uow, channel="pos", store="TPE-101",
               lines=[{"sku": "S", "quantity": 1, "unit_price": "100.00"}])  # fmt: skip
    enrol(uow, phone="0933-000-000", name="王小明", birth_date="1990-01-01")
    enrol(uow, phone="0944-000-000", name="王小明", birth_date="1990-01-01")
    k = identity.identity_kpis(uow, since=None, until=None)
    assert k.orders == 2 and k.order_value == "400.00"
    assert k.identification_rate == 0.75
    assert k.online_spend_share == 0.75 and k.offline_spend_share == 0.25
    assert k.active_members == 3 and k.suspected_duplicates == 2
    assert k.duplicate_account_rate == round(2 / 3, 4)


def test_a_merge_lifts_the_survivor_to_the_tier_the_combined_spend_earns(uow: UnitOfWork) -> None:
    from omo.tiers import service as tiers

    a = enrol(uow, phone="0922-333-444")
    b = enrol(uow, phone="0922-333-555")
    for phone in ("0922333444", "0922333555"):  # NT$6,000 each; silver starts at NT$10,000
        post_order(
            uow,
            customer=[{"kind": "phone", "value": phone}],
            lines=[{"sku": "SKU-1", "quantity": 1, "unit_price": "6000.00"}],
        )
    assert tiers.member_tier(uow, member_id=a.member.id).level == "member"
    identity.merge_use_case(
        uow, survivor_id=a.member.id, absorbed_id=b.member.id, note=None, actor="staff"
    )
    placed = tiers.member_tier(uow, member_id=a.member.id)
    assert placed.level == "silver" and placed.window_orders == 2


@pytest.mark.postgres
def test_an_order_recorded_during_a_merge_keeps_its_stats(
    uow: UnitOfWork, engine: sa.Engine, db_url: str
) -> None:
    """PostgreSQL: the order's stats UPDATE waits on the merge's row lock, then adds to the row
    the merge rewrote in place (a DELETE + INSERT there would have lost it)."""
    import threading
    import time

    from omo.commerce import service as commerce
    from omo.shared import clock

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    a = enrol(uow, phone="0922-444-111")
    b = enrol(uow, phone="0922-444-222")
    post_order(uow, customer=[{"kind": "phone", "value": "0922444222"}])
    done: list[str] = []

    def order_for_survivor() -> None:
        post_order(uow, customer=[{"kind": "phone", "value": "0922444111"}])
        done.append("order")

    with uow.write() as session:
        identity.merge_members(
            session, survivor_id=a.member.id, absorbed_id=b.member.id, reason="manual",
            evidence={}, actor="staff", now=clock.now(),
        )  # fmt: skip
        racer = threading.Thread(target=order_for_survivor)
        racer.start()
        time.sleep(1.0)  # the order is now waiting on the merge's locks
        assert done == []
    racer.join(timeout=30)
    assert done == ["order"]
    with uow.read() as session:
        assert commerce.check_orders_and_stats(session) == []
        assert commerce.stats_of(session, a.member.id).order_count == 2  # type: ignore[union-attr]


def test_undo_gives_back_an_earlier_join_date(uow: UnitOfWork, engine: sa.Engine) -> None:
    """The survivor takes the earlier join date of the member it absorbs; undo puts its own
    back (found by schemathesis: the undo wrote the date as text and answered 500)."""
    from datetime import UTC, datetime

    from omo.shared import clock

    clock.set_clock(lambda: datetime(2025, 1, 1, tzinfo=UTC))
    older = enrol(uow, phone="0933-000-111").member.id
    clock.set_clock(lambda: datetime(2026, 1, 1, tzinfo=UTC))
    newer = enrol(uow, phone="0933-000-222").member.id
    before = dump(engine)
    merge = identity.merge_use_case(uow, survivor_id=newer, absorbed_id=older, note=None, actor="t")
    assert "joined_at" in merge.changes["profile"]
    identity.undo_use_case(uow, merge_id=merge.id, actor="t")
    after = dump(engine)
    for table in ("members", "member_identifiers"):
        assert after[table] == before[table]


def test_the_linkage_snapshot_holds_active_members_only(uow: UnitOfWork) -> None:
    """`omo resolve` reads every member but keeps the active ones (the status is tested in
    Python, so SQLite scans in id order): a merged record is not matched again."""
    from omo.identity.snapshot import member_records

    kept = enrol(
        uow, phone="0912-000-222", name="陳美玲", city="臺北市", address_line="忠孝東路1號"
    )
    gone = enrol(uow, identifiers=[{"kind": "email", "value": "meiling@example.com"}], name=None)
    both = enrol(
        uow,
        identifiers=[
            {"kind": "phone", "value": "0912000222"},
            {"kind": "email", "value": "meiling@example.com"},
        ],
        name=None,
    )
    assert both.merged_member_ids == [gone.member.id]
    other = enrol(uow, phone="0933-000-333", name="王小明")
    records = member_records(uow).to_pylist()
    assert [r["unique_id"] for r in records] == [kept.member.id, other.member.id]
    first = records[0]
    assert (first["name_cjk"], first["city"], first["street"]) == ("陈美玲", "台北市", "忠孝东路")
    assert first["phone"] == "912000222"


def test_the_linkage_snapshot_is_the_same_on_one_core_or_several(
    uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keys are computed in parts (forked children where the process may fork) and put
    back together in member order."""
    from omo.identity.snapshot import member_records
    from omo.members import service as members
    from omo.shared import forked

    for n in range(7):
        enrol(uow, phone=f"0912-000-{n:03d}", name=["陳美玲", "王小明", "林志玲"][n % 3],
              city="臺北市", address_line=f"忠孝東路{n + 1}號")  # fmt: skip
    # a merged member in the middle of the ids: read by its range, left out by status
    enrol(uow, identifiers=[{"kind": "email", "value": "a@example.com"}], name="林志玲")
    enrol(uow, identifiers=[{"kind": "phone", "value": "0912-000-003"},
                            {"kind": "email", "value": "a@example.com"}], name=None)  # fmt: skip
    for n in range(7, 10):
        enrol(uow, phone=f"0912-000-{n:03d}", name="陳美玲", city="臺北市")
    read_here: list[tuple[int, int] | None] = []
    profiles = members.matching_profiles

    def spied(session: Session, ids: tuple[int, int] | None = None) -> Any:
        read_here.append(ids)  # the parent's calls only: a child's list dies with it
        return profiles(session, ids)

    monkeypatch.setattr(members, "matching_profiles", spied)
    tables = {}
    for cores in (1, 2, 3):
        monkeypatch.setattr(forked, "cores", lambda cores=cores: cores)
        tables[cores] = member_records(uow)
    with uow.read() as session:
        low, high = members.id_span(session) or (0, 0)
    # one read of everything; then this process reads (at least) the first of 2 and of 3 id
    # ranges: the others are read by forked children, or here too where it cannot fork
    assert read_here[0] is None and None not in read_here[1:]
    assert (low - 1, low - 1 + (high - low + 1) // 2) in read_here
    assert (low - 1, low - 1 + (high - low + 1) // 3) in read_here
    assert tables[1].num_rows == 10
    for cores in (2, 3):
        assert tables[cores].to_pylist() == tables[1].to_pylist()
        assert tables[cores].schema == tables[1].schema


def test_members_indexes_end_with_the_status_and_the_kpis_read_them(tmp_path: Path) -> None:
    """A merge changes a member's status: no index of members leads with it, so the entry is
    rewritten in place instead of moved to another part of the index (migration 0022). The
    identity KPIs still read the members from those indexes alone, never the table."""
    from alembic import command

    from omo.cli import alembic_config
    from omo.db import make_engine
    from omo.settings import Settings

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda _c, _cur, sql, *_a: statements.append(sql))  # fmt: skip
    with UnitOfWork(engine).read() as session:
        identity.identity_figures(session, since=None, until=None)
    read = [sql for sql in statements if "FROM members" in sql]
    with engine.connect() as conn:
        indexes = {
            name: [c for _, _, c in conn.exec_driver_sql(f"PRAGMA index_info({name})")]
            for (name,) in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'members'"
            )
        }
        plans = {
            sql: " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}",
                                                                  (None,) * sql.count("?")))
            for sql in read
        }  # fmt: skip
    engine.dispose()
    assert indexes["ix_members_joined_status"] == ["joined_at", "status"]
    assert indexes["ix_members_name_birth_status"] == ["name", "birth_date", "status"]
    assert not [name for name, columns in indexes.items() if columns[0] == "status"]
    # the count by status (active, then merged) and the members sharing name and birth date
    assert len(plans) == 2, plans
    for sql, plan in plans.items():
        assert "USING COVERING INDEX" in plan, (sql, plan)
    grouped = next(plan for sql, plan in plans.items() if "GROUP BY" in sql)
    assert "COVERING INDEX ix_members_name_birth_status" in grouped
