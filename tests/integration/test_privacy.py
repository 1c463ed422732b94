"""A member's data export and erasure (SQLite + PostgreSQL): the export holds every area's rows;
erasure removes the person everywhere while orders, ledgers, counters and KPIs stay exactly as
they were; consent changes are logged with their source."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from omo.analytics.kpis import kpis
from omo.apikeys.service import create_key
from omo.commerce import service as commerce
from omo.commerce.models import OrderContact
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.customer_view import service as customer_view
from omo.db import UnitOfWork
from omo.events.models import Event
from omo.identity.models import Merge
from omo.identity.service import merge_use_case
from omo.members.identifiers import normalise
from omo.members.models import ConsentChange, Member
from omo.messaging import service as messaging
from omo.messaging.models import Message
from omo.points import service as points
from omo.privacy import service as privacy
from omo.settings import Settings
from omo.shared import clock
from omo.shared.errors import NotFound
from tests import factories as f

NOW = datetime(2026, 5, 4, 3, 0, tzinfo=UTC)


def _figures(uow: UnitOfWork) -> dict[str, Any]:
    k = kpis(uow, since=NOW - timedelta(days=30), until=NOW + timedelta(hours=1))
    with uow.read() as s:
        checks = (
            points.check_ledger(s) + coupons.check_counters(s) + commerce.check_orders_and_stats(s)
        )
    return {"net_sales": k.net_sales, "orders": k.orders, "points": k.points_outstanding,
            "members": k.members, "coupons_used": k.coupons_used, "checks": checks}  # fmt: skip


def _world(uow: UnitOfWork, settings: Settings) -> tuple[int, int]:
    clock.set_clock(lambda: NOW - timedelta(days=1))
    person = f.enrol(
        uow, name="陳美玲", birth_date="1990-03-09", city="台北市", address_line="信義路五段7號",
        consents={"email": True, "sms": True},
        identifiers=[{"kind": "phone", "value": "0912-345-678"},
                     {"kind": "email", "value": "mei@example.com"}],
    ).member.id  # fmt: skip
    twin = f.enrol(uow, name="陳美齡", phone="0987-654-321").member.id
    coupons.put_template(
        uow, code="OFF50", template=CouponTemplate(name="折50", kind="amount_off", amount=50)
    )
    coupons.issue(uow, template_code="OFF50", member_ids=[person], key="k")
    clock.set_clock(lambda: NOW)
    f.post_order(
        uow, customer=[{"kind": "phone", "value": "0912-345-678"}], ordered_at=NOW.isoformat(),
        discount_total="50.00", lines=[{"sku": "S", "quantity": 2, "unit_price": "150.00"}],
    )  # fmt: skip
    f.post_order(uow, member_id=twin, ordered_at=NOW.isoformat())
    with uow.write() as s:
        s.add(Event(event_id="E1", kind="search", occurred_at=NOW, channel="web", member_id=person,
                    query="陳美玲 生日禮", contact_kind="email", contact_namespace="",
                    contact_value="mei@example.com", created_at=NOW))  # fmt: skip
        messaging.queue(
            s, member_id=person, channel="email", template="welcome", key="m1", context={},
            settings=settings,
        )  # fmt: skip
    merge_use_case(uow, survivor_id=person, absorbed_id=twin, note="same", actor="t")
    return person, twin


def test_export_holds_every_area(uow: UnitOfWork, settings: Settings) -> None:
    person, twin = _world(uow, settings)
    doc = privacy.export(uow, member_id=twin, actor="dpo")  # an old id leads to the person
    assert doc["member_ids"] == [person, twin]
    t = doc["tables"]
    json.dumps(doc, ensure_ascii=False)  # plain JSON all through
    assert {m["name"] for m in t["members"]} == {"陳美玲", "陳美齡"}
    assert {i["value"] for i in t["member_identifiers"]} >= {"+886912345678", "mei@example.com"}
    assert len(t["orders"]) == 2 and len(t["order_lines"]) == 2
    assert t["points_entries"] and t["coupons"] and t["messages"] and t["events"]
    assert t["merges_in"][0]["absorbed_id"] == twin
    assert {c["channel"] for c in t["member_consent_changes"]} == {"email", "sms"}


def test_erasure_forgets_the_person_and_keeps_every_total(
    uow: UnitOfWork, settings: Settings
) -> None:
    person, twin = _world(uow, settings)
    before = _figures(uow)
    stats_before = customer_view.customer_view(uow, member_id=person).stats
    balance_before = points.summary(uow, member_id=person).available
    assert before["checks"] == []

    done = privacy.erase(uow, member_id=person, actor="dpo")
    assert done.member_ids == [person, twin]
    with uow.read() as s:
        for mid in (person, twin):
            m = s.get(Member, mid)
            assert m is not None and m.erased_at is not None
            assert (m.name, m.birth_date, m.city, m.address_line) == (None, None, None, None)
        assert s.scalars(select(OrderContact)).all() == []
        event = s.scalar(select(Event))
        assert event is not None and (event.query, event.contact_value) == (None, None)
        message = s.scalar(select(Message))
        assert message is not None and (message.address, message.body) == (None, "")
        assert s.scalar(select(Merge.changes)) == {}
        changes = s.execute(
            select(ConsentChange.channel, ConsentChange.granted, ConsentChange.source)
            .where(ConsentChange.member_id == person).order_by(ConsentChange.id)
        ).all()  # fmt: skip
    assert [tuple(c) for c in changes[-2:]] == [
        ("email", False, "erasure"),
        ("sms", False, "erasure"),
    ]
    with pytest.raises(NotFound):
        customer_view.lookup(uow, identifier=normalise("phone", "0912-345-678", region="TW"))
    # the totals, ledgers and counters are exactly as they were
    after = _figures(uow)
    assert after == before
    assert customer_view.customer_view(uow, member_id=person).stats == stats_before
    assert points.summary(uow, member_id=person).available == balance_before
    # the same phone enrolling again is a new person, not the erased one
    again = f.enrol(uow, name="新會員", phone="0912-345-678").member.id
    assert again not in (person, twin)
    # a second erasure changes nothing and does not fail
    privacy.erase(uow, member_id=person, actor="dpo")
    assert _figures(uow)["checks"] == []


def test_erasure_blanks_what_staff_wrote_about_the_person(uow: UnitOfWork) -> None:
    """Free text typed about a member — an adjustment's reason, a refund's, a level given by
    hand, a parcel's tracking note — may name or describe them: it goes, the amounts stay."""
    from datetime import date

    from omo.checkout.refunds import RefundRequest, refund
    from omo.points.schemas import PointsChange
    from omo.rewards import fulfilment
    from omo.rewards import service as rewards
    from omo.rewards.schemas import RedemptionFulfil, RewardIn, RewardRedeem
    from omo.tiers import grants
    from tests.conftest import dump

    clock.set_clock(lambda: NOW)
    person = f.enrol(uow, name="陳美玲", phone="0912-345-678").member.id
    personal = "陳小姐 信義路五段7號"
    points.adjust(uow, member_id=person, actor="cs", change=PointsChange(
        points=500, idempotency_key="a1", reason=f"包裹延誤：{personal}"))  # fmt: skip
    order = f.post_order(uow, member_id=person, ordered_at=NOW.isoformat()).id
    refund(uow, order_id=order, actor="till",
           req=RefundRequest(idempotency_key="r1", reason=f"{personal} 說太大"))  # fmt: skip
    grants.grant(uow, member_id=person, actor="cs", req=grants.TierGrant(
        level="gold", until=date(2026, 12, 31), reason=f"老闆的朋友 {personal}"))  # fmt: skip
    rewards.put_reward(uow, code="TOTE", data=RewardIn(name="帆布袋", points=100), actor="t")
    rewards.redeem(uow, member_id=person, code="TOTE", actor="app",
                   req=RewardRedeem(idempotency_key="app-1"))  # fmt: skip
    fulfilment.fulfil(uow, idempotency_key="app-1", actor="cs",
                      req=RedemptionFulfil(reference=f"黑貓 123 寄 {personal}"))  # fmt: skip
    assert "信義路" in json.dumps(dump(uow.engine), ensure_ascii=False, default=str)
    balance = points.summary(uow, member_id=person).available

    privacy.erase(uow, member_id=person, actor="dpo")
    assert "信義路" not in json.dumps(dump(uow.engine), ensure_ascii=False, default=str)
    assert points.summary(uow, member_id=person).available == balance
    with uow.read() as s:
        assert points.check_ledger(s) == [] and rewards.check_redemptions(s) == []


def test_privacy_endpoints_need_their_scope(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    person, _ = _world(uow, settings)
    reader = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    dpo = create_key(uow, name="dpo", store_code=None, scopes=["privacy:admin"]).key
    client.headers["Authorization"] = f"Bearer {reader}"
    assert client.get(f"/api/v1/members/{person}/export").status_code == 403
    assert client.post(f"/api/v1/members/{person}/erase").status_code == 403
    client.headers["Authorization"] = f"Bearer {dpo}"
    doc = client.get(f"/api/v1/members/{person}/export")
    assert doc.status_code == 200 and doc.json()["member_id"] == person
    erased = client.post(f"/api/v1/members/{person}/erase")
    assert erased.status_code == 200 and erased.json()["actor"] == "dpo"
    assert client.get("/api/v1/members/999999/export").status_code == 404


def test_admin_actions_exports_and_erasures_are_audited(
    client: TestClient, uow: UnitOfWork, settings: Settings
) -> None:
    from omo.audit import service as audit
    from omo.journeys import playbook

    person, _ = _world(uow, settings)
    dpo = create_key(uow, name="dpo", store_code=None, scopes=None, actor="ops").key
    playbook.seed(uow, enable=True)
    client.headers["Authorization"] = f"Bearer {dpo}"
    assert client.get(f"/api/v1/members/{person}/export").status_code == 200
    assert client.post(f"/api/v1/members/{person}/erase").status_code == 200
    log = client.get("/api/v1/audit").json()
    actions = [(e["actor"], e["action"], e["target"]) for e in log]
    assert actions[:2] == [("dpo", "member.erase", f"member:{person}"),
                           ("dpo", "member.export", f"member:{person}")]  # fmt: skip
    assert ("ops", "apikey.create", "apikey:dpo") in actions
    assert ("t", "member.merge", f"member:{person}") in actions
    assert ("playbook", "journey.enable", "journey:welcome") in actions
    assert ("playbook", "coupon_template.put", "coupon_template:FIRST100") in actions
    only = client.get("/api/v1/audit", params={"target": f"member:{person}"}).json()
    assert {e["action"] for e in only} == {"member.merge", "member.export", "member.erase"}
    assert "陳美玲" not in str(audit.entries(uow))  # no personal data in the log
    client.headers["Authorization"] = (
        "Bearer " + create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    )
    assert client.get("/api/v1/audit").status_code == 403
