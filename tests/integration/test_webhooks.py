"""Webhooks: the outbox's facts posted to a real HTTP server in process, signed, in order, at
least once, each subscription from where it stopped (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from omo.db import UnitOfWork
from omo.messaging.models import OutboxMessage
from omo.shared import clock
from omo.webhooks import delivery, signing
from omo.webhooks import service as webhooks
from omo.webhooks.models import Webhook
from omo.webhooks.schemas import WebhookIn
from tests import factories as f
from tests.conftest import dump


class Receiver:
    """An integrator's endpoint: records each post; answers the statuses queued, then 200."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.arrived = threading.Event()  # a post came in
        self.gate: threading.Event | None = None  # when set up: each post waits for it
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived.set()
                if receiver.gate is not None:
                    receiver.gate.wait(10)
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if status == 200:
                        receiver.posts.append(
                            {"path": self.path, "headers": dict(self.headers), "raw": body,
                             "body": json.loads(body)}
                        )  # fmt: skip
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/omo"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def keys(self) -> list[str]:
        return [p["body"]["key"] for p in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def subscribe(uow: UnitOfWork, url: str, name: str = "erp", **kw: Any) -> str:
    read, _ = webhooks.put_webhook(
        uow, name=name, data=WebhookIn.model_validate({"url": url, **kw}), actor="test"
    )
    assert read.secret is not None
    return read.secret


def deliver(uow: UnitOfWork) -> tuple[int, int]:
    report = delivery.deliver_due(uow, settle_s=0)
    return report.delivered, report.failed


def facts(uow: UnitOfWork) -> list[tuple[int, str, str]]:
    with uow.read() as s:
        rows = s.execute(
            select(OutboxMessage.id, OutboxMessage.topic, OutboxMessage.key).order_by(
                OutboxMessage.id
            )
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


def hook(uow: UnitOfWork, name: str = "erp") -> Webhook:
    with uow.read() as s:
        row = s.scalar(select(Webhook).where(Webhook.name == name))
        assert row is not None
        s.expunge(row)
        return row


def test_a_subscription_gets_each_fact_after_it_signed_and_in_order(
    uow: UnitOfWork, receiver: Receiver
) -> None:
    f.store(uow)
    f.enrol(uow, phone="0912-000-001")  # published before the subscription: not posted
    before = facts(uow)
    secret = subscribe(uow, receiver.url)
    member = f.enrol(uow, phone="0912-000-002").member.id
    f.post_order(uow, external_id="W-TEST-1", customer=[{"kind": "phone", "value": "0912-000-002"}])
    after = [x for x in facts(uow) if x not in before]
    assert {t for _i, t, _k in after} >= {"MemberEnrolled", "OrderRecorded"}

    assert deliver(uow) == (len(after), 0)
    assert receiver.keys() == [k for _i, _t, k in after]  # in the outbox's order
    now = int(time.time())
    for post, (fact_id, topic, key) in zip(receiver.posts, after, strict=True):
        assert post["path"] == "/omo"
        assert post["body"]["id"] == fact_id and post["body"]["topic"] == topic
        assert post["headers"]["OMO-Event-Key"] == key
        assert post["headers"]["OMO-Event-Topic"] == topic
        assert signing.verify(secret, post["headers"]["OMO-Signature"], post["raw"], now=now)
        assert not signing.verify("whsec_other", post["headers"]["OMO-Signature"], post["raw"],
                                  now=now)  # fmt: skip
    enrolled = next(p["body"] for p in receiver.posts if p["body"]["topic"] == "MemberEnrolled")
    assert enrolled["payload"]["member_id"] == member
    order = next(p["body"] for p in receiver.posts if p["body"]["topic"] == "OrderRecorded")
    assert order["payload"]["external_id"] == "W-TEST-1"  # the shop's own order number
    assert order["payload"]["member_id"] == member and order["payload"]["total"] == "300.00"

    row = hook(uow)
    assert (row.delivered, row.position, row.failures) == (len(after), after[-1][0], 0)
    assert webhooks.get_webhook(uow, name="erp").waiting == 0
    assert deliver(uow) == (0, 0)  # nothing new: nothing posted again
    assert len(receiver.posts) == len(after)


def test_a_receiver_that_fails_gets_the_facts_later_in_order(
    uow: UnitOfWork, receiver: Receiver
) -> None:
    f.store(uow)
    subscribe(uow, receiver.url)
    f.enrol(uow, phone="0912-000-003")
    f.enrol(uow, phone="0912-000-004")
    keys = [k for _i, _t, k in facts(uow)]
    receiver.statuses = [500]
    t0 = datetime.now(UTC)
    clock.set_clock(lambda: t0)
    assert deliver(uow) == (0, 1)
    row = hook(uow)
    assert (row.failures, row.last_error, row.delivered) == (1, "HTTP 500", 0)
    assert row.next_at == t0 + timedelta(minutes=1)
    assert webhooks.get_webhook(uow, name="erp").waiting == len(keys)

    assert deliver(uow) == (0, 0)  # backing off: not tried before next_at
    receiver.statuses = [200, 503]  # the first goes through, the second fails
    clock.set_clock(lambda: t0 + timedelta(minutes=1))
    assert deliver(uow) == (1, 1)
    assert receiver.keys() == keys[:1]
    row = hook(uow)
    assert (row.failures, row.last_error) == (2, "HTTP 503")
    assert row.next_at == t0 + timedelta(minutes=1 + 2)  # doubled

    clock.set_clock(lambda: t0 + timedelta(minutes=3))
    assert deliver(uow) == (len(keys) - 1, 0)
    assert receiver.keys() == keys  # each once, in order
    row = hook(uow)
    assert (row.failures, row.last_error, row.next_at, row.delivered) == (0, None, None, len(keys))


def test_a_receiver_that_does_not_answer_is_tried_again(
    uow: UnitOfWork, receiver: Receiver
) -> None:
    from omo.testing.postgres import free_port

    subscribe(uow, f"http://127.0.0.1:{free_port()}/gone")
    f.enrol(uow, phone="0912-000-005")
    assert deliver(uow) == (0, 1)
    row = hook(uow)
    assert row.failures == 1 and row.last_error is not None
    assert row.last_error.startswith("ConnectError")
    assert row.position < facts(uow)[-1][0]
    assert deliver(uow) == (0, 0)  # backing off
    # pointed at the right address, it is tried at once
    webhooks.put_webhook(uow, name="erp", data=WebhookIn(url=receiver.url), actor="test")
    assert deliver(uow) == (1, 0)
    assert receiver.keys() == [facts(uow)[-1][2]]


def test_topics_choose_what_is_posted_and_the_rest_is_passed(
    uow: UnitOfWork, receiver: Receiver
) -> None:
    f.store(uow)
    subscribe(uow, receiver.url, topics=["OrderRecorded"])
    f.enrol(uow, phone="0912-000-006")
    f.post_order(uow, customer=[{"kind": "phone", "value": "0912-000-006"}])
    f.enrol(uow, phone="0912-000-007")
    assert webhooks.get_webhook(uow, name="erp").waiting == 1
    assert deliver(uow) == (1, 0)
    assert [p["body"]["topic"] for p in receiver.posts] == ["OrderRecorded"]
    assert hook(uow).position == facts(uow)[-1][0]  # past the enrolments too


def test_a_subscription_switched_off_keeps_its_place(uow: UnitOfWork, receiver: Receiver) -> None:
    subscribe(uow, receiver.url)
    webhooks.put_webhook(
        uow, name="erp", data=WebhookIn(url=receiver.url, active=False), actor="test"
    )
    f.enrol(uow, phone="0912-000-008")
    assert deliver(uow) == (0, 0) and receiver.posts == []
    read, created = webhooks.put_webhook(uow, name="erp", data=WebhookIn(url=receiver.url),
                                         actor="test")  # fmt: skip
    assert not created and read.secret is None and read.waiting == 1
    assert deliver(uow) == (1, 0)


def test_a_pass_beside_one_posting_leaves_the_subscription_to_it(
    uow: UnitOfWork, receiver: Receiver
) -> None:
    subscribe(uow, receiver.url)
    for n in range(3):
        f.enrol(uow, phone=f"0912-000-1{n:02d}")
    receiver.gate = threading.Event()
    first: list[tuple[int, int]] = []
    posting = threading.Thread(target=lambda: first.append(deliver(uow)))
    posting.start()
    assert receiver.arrived.wait(10)  # the first pass holds the subscription, mid-post
    assert deliver(uow) == (0, 0)  # a second pass finds it taken
    row = hook(uow)
    assert row.leased_until is not None
    # and the lease itself is refused, not only left out of the due list
    assert uow.run(partial(delivery._lease, hook_id=row.id, now=clock.now())) is None
    receiver.gate.set()
    posting.join(10)
    keys = [k for _i, _t, k in facts(uow)]
    assert first == [(len(keys), 0)]
    assert receiver.keys() == keys  # each once, in order
    assert hook(uow).leased_until is None


def test_the_webhooks_api(api: TestClient, uow: UnitOfWork, receiver: Receiver) -> None:
    made = api.put("/api/v1/webhooks/erp", json={"url": receiver.url, "topics": ["TierChanged"]})
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert secret.startswith("whsec_") and made.json()["topics"] == ["TierChanged"]
    listed = api.get("/api/v1/webhooks").json()
    assert [w["name"] for w in listed] == ["erp"] and listed[0]["secret"] is None
    assert api.get("/api/v1/webhooks/erp").json()["secret"] is None

    changed = api.put("/api/v1/webhooks/erp", json={"url": receiver.url, "rotate_secret": True})
    assert changed.status_code == 200
    assert changed.json()["secret"] not in (None, secret) and changed.json()["topics"] == []

    state = dump(uow.engine)
    for body, field in (
        ({"url": receiver.url, "topics": ["OrderPlaced"]}, "topics"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http:///nohost"}, "url"),
        ({"url": "http://[::1/x"}, "url"),
        ({"url": receiver.url, "colour": "red"}, "colour"),
    ):
        bad = api.put("/api/v1/webhooks/erp2", json=body)
        assert bad.status_code == 422, body
        assert field in json.dumps(bad.json()["detail"][0]["loc"]), bad.json()
    unknown = api.put("/api/v1/webhooks/erp2", json={"url": receiver.url, "topics": ["X"]})
    assert "known: MemberEnrolled" in unknown.json()["detail"][0]["msg"]
    assert api.put("/api/v1/webhooks/a%20b", json={"url": receiver.url}).status_code == 422
    assert api.get("/api/v1/webhooks/nope").status_code == 404
    assert dump(uow.engine) == state  # refused: nothing written

    from omo.apikeys.service import create_key

    reader = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    denied = api.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {reader}"})
    assert denied.status_code == 403

    assert api.delete("/api/v1/webhooks/erp").status_code == 204
    assert api.get("/api/v1/webhooks/erp").status_code == 404
    assert api.delete("/api/v1/webhooks/erp").status_code == 404


def test_a_poller_reads_the_facts_page_by_page(api: TestClient, uow: UnitOfWork) -> None:
    f.store(uow)
    for n in range(3):
        f.enrol(uow, phone=f"0912-000-2{n:02d}")
    sold = f.post_order(
        uow, external_id="W-POLL-1", customer=[{"kind": "phone", "value": "0912-000-200"}]
    )
    back = api.post(f"/api/v1/orders/{sold.id}/refund", json={"idempotency_key": "r1"})
    assert back.status_code == 200, back.text
    everything = facts(uow)
    fresh = api.get("/api/v1/facts").json()["facts"]
    # on PostgreSQL a fact waits 5 s to settle (a lower id may still commit); SQLite's one
    # writer commits in order
    assert len(fresh) == (0 if uow.engine.dialect.name == "postgresql" else len(everything))
    later = datetime.now(UTC) + timedelta(seconds=10)
    clock.set_clock(lambda: later)
    seen: list[str] = []
    after, pages = 0, 0
    while True:
        page = api.get("/api/v1/facts", params={"after": after, "limit": 2})
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [x["key"] for x in body["facts"]]
        after, pages = body["next_after"], pages + 1
        if not body["more"]:
            break
    assert seen == [k for _i, _t, k in everything] and pages >= 2  # each once, in order
    assert after == everything[-1][0]
    last = api.get("/api/v1/facts", params={"after": after}).json()
    assert last == {"facts": [], "next_after": after, "more": False}

    orders = api.get("/api/v1/facts", params={"topic": "OrderRecorded"}).json()
    [order] = orders["facts"]
    assert order["payload"]["external_id"] == "W-POLL-1" and orders["next_after"] == after
    [refund] = api.get("/api/v1/facts", params={"topic": "OrderRefunded"}).json()["facts"]
    assert refund["payload"]["external_id"] == "W-POLL-1" and refund["payload"]["whole"]
    both = api.get(
        "/api/v1/facts", params=[("topic", "OrderRecorded"), ("topic", "MemberEnrolled")]
    )
    assert len(both.json()["facts"]) == len(everything) - 1  # not the refund

    unknown = api.get("/api/v1/facts", params={"topic": "OrderPlaced"})
    assert unknown.status_code == 422 and "known: MemberEnrolled" in unknown.text
    for bad in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"after": "x"}):
        assert api.get("/api/v1/facts", params=bad).status_code == 422, bad
    from omo.apikeys.service import create_key

    reader = create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key
    denied = api.get("/api/v1/facts", headers={"Authorization": f"Bearer {reader}"})
    assert denied.status_code == 403
    poller = create_key(uow, name="erp", store_code=None, scopes=["facts:read"]).key
    allowed = api.get("/api/v1/facts", headers={"Authorization": f"Bearer {poller}"})
    assert allowed.status_code == 200


def test_a_subscription_moved_back_posts_the_facts_again(
    api: TestClient, uow: UnitOfWork, receiver: Receiver
) -> None:
    assert api.put("/api/v1/webhooks/erp", json={"url": receiver.url}).status_code == 201
    f.enrol(uow, phone="0912-000-301")
    f.enrol(uow, phone="0912-000-302")
    assert deliver(uow) == (2, 0)
    [(first, _t, k1), (second, _t2, k2)] = facts(uow)
    # the receiver lost them: from before the first
    moved = api.put("/api/v1/webhooks/erp", json={"url": receiver.url, "position": first - 1})
    assert moved.status_code == 200 and moved.json()["waiting"] == 2
    assert deliver(uow) == (2, 0)
    assert receiver.keys() == [k1, k2, k1, k2]
    # a post is the fact as GET /facts answers it
    later = datetime.now(UTC) + timedelta(seconds=10)  # past PostgreSQL's settling
    clock.set_clock(lambda: later)
    page = api.get("/api/v1/facts", params={"after": first - 1})
    assert [json.loads(p["raw"]) for p in receiver.posts[:2]] == page.json()["facts"]

    state = dump(uow.engine)
    past = api.put("/api/v1/webhooks/erp", json={"url": receiver.url, "position": second + 1})
    assert past.status_code == 422
    assert past.json()["detail"][0]["loc"][-1] == "position"
    assert f"past the newest fact ({second})" in past.json()["detail"][0]["msg"]
    assert (
        api.put("/api/v1/webhooks/erp", json={"url": receiver.url, "position": -1}).status_code
        == 422
    )
    assert dump(uow.engine) == state
    # made with a position: from there, not from the newest (the schema fuzz found a 500 here)
    made = api.put("/api/v1/webhooks/dw", json={"url": receiver.url, "position": 0})
    assert made.status_code == 201 and made.json()["position"] == 0
    assert made.json()["waiting"] == len(facts(uow))


def test_a_subscription_moved_back_while_posting_stays_where_it_was_put(
    uow: UnitOfWork, receiver: Receiver
) -> None:
    subscribe(uow, receiver.url)
    f.enrol(uow, phone="0912-000-401")
    f.enrol(uow, phone="0912-000-402")
    assert deliver(uow) == (2, 0)
    f.enrol(uow, phone="0912-000-403")
    keys = [k for _i, _t, k in facts(uow)]
    start = facts(uow)[0][0] - 1
    receiver.arrived.clear()
    receiver.gate = threading.Event()
    posting = threading.Thread(target=lambda: deliver(uow))
    posting.start()
    assert receiver.arrived.wait(10)  # mid-post of the third
    webhooks.put_webhook(uow, name="erp", actor="t",
                         data=WebhookIn(url=receiver.url, position=start))  # fmt: skip
    receiver.gate.set()
    posting.join(10)
    assert hook(uow).position == start  # the pass that was posting did not move it on
    assert deliver(uow) == (3, 0)
    assert receiver.keys() == keys + keys


def test_a_ping_checks_the_receiver_and_leaves_the_facts_alone(
    api: TestClient, uow: UnitOfWork, receiver: Receiver
) -> None:
    from omo.testing.postgres import free_port

    secret = api.put("/api/v1/webhooks/erp", json={"url": receiver.url}).json()["secret"]
    f.enrol(uow, phone="0912-000-501")
    before = hook(uow)
    pinged = api.post("/api/v1/webhooks/erp/ping")
    assert pinged.status_code == 200, pinged.text
    assert pinged.json()["ok"] and pinged.json()["status"] == 200 and pinged.json()["error"] is None
    [post] = receiver.posts
    assert post["body"]["topic"] == "Ping" and post["body"]["payload"] == {"webhook": "erp"}
    assert post["headers"]["OMO-Event-Key"] == pinged.json()["key"]
    assert signing.verify(
        secret, post["headers"]["OMO-Signature"], post["raw"], now=int(time.time())
    )
    after = hook(uow)
    assert (after.position, after.delivered, after.failures) == (before.position, 0, 0)

    receiver.statuses = [500]
    refused = api.post("/api/v1/webhooks/erp/ping").json()
    assert (refused["ok"], refused["status"], refused["error"]) == (False, 500, "HTTP 500")
    assert hook(uow).failures == 0  # a ping is not a delivery
    url = f"http://127.0.0.1:{free_port()}/x"
    assert api.put("/api/v1/webhooks/gone", json={"url": url}).status_code == 201
    gone = api.post("/api/v1/webhooks/gone/ping").json()
    assert not gone["ok"] and gone["status"] is None and gone["error"].startswith("ConnectError")
    assert api.post("/api/v1/webhooks/nope/ping").status_code == 404
    assert deliver(uow)[0] == 1  # the enrolment, to erp, in its turn


def test_points_redeemed_and_given_back_through_the_api_are_facts_once(uow: UnitOfWork) -> None:
    """`PointsRedeemed` was a topic a subscription could name and nothing published: a points
    redemption outside a sale (the app, a partner) and its cancellation are facts now."""
    from omo.messaging.models import OutboxMessage
    from omo.points import service as points
    from omo.points.schemas import PointsChange

    mid = f.enrol(uow, phone="0912-000-003").member.id
    points.adjust(uow, member_id=mid, actor="t",
                  change=PointsChange(points=300, idempotency_key="seed", reason="t"))  # fmt: skip
    before = {k for _i, _t, k in facts(uow)}
    spend = PointsChange(points=120, idempotency_key="app-77", reason="捐點公益")
    points.redeem(uow, member_id=mid, change=spend, actor="app")
    points.redeem(uow, member_id=mid, change=spend, actor="app")  # a retry: no second fact
    points.cancel_redemption(uow, idempotency_key="app-77", actor="app")
    points.cancel_redemption(uow, idempotency_key="app-77", actor="app")
    with uow.read() as s:
        new = [
            (m.topic, m.payload)
            for m in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            if m.key not in before
        ]
    assert new == [
        ("PointsRedeemed", {"member_id": mid, "points": 120, "idempotency_key": "app-77",
                            "reason": "捐點公益", "available": 180}),
        ("PointsRedemptionCancelled", {"member_id": mid, "points": 120,
                                       "idempotency_key": "app-77", "available": 300}),
    ]  # fmt: skip


def test_a_url_with_credentials_is_shown_masked_and_posted_whole(
    uow: UnitOfWork, api: TestClient, receiver: Receiver
) -> None:
    real = receiver.url.replace("http://", "http://omo:pa55w0rd@") + "?token=abc123&v=2"
    r = api.put("/api/v1/webhooks/erp", json={"url": real})
    assert r.status_code == 201, r.text
    shown = receiver.url.replace("http://", "http://omo:***@") + "?token=***&v=2"
    assert r.json()["url"] == shown
    assert api.get("/api/v1/webhooks/erp").json()["url"] == shown
    assert "pa55w0rd" not in api.get("/api/v1/webhooks").text
    assert (
        "pa55w0rd" not in api.get("/api/v1/audit").text
        and "abc123" not in api.get("/api/v1/audit").text
    )
    # a client that sends back what GET showed (to switch it off and on) keeps the credentials
    assert api.put("/api/v1/webhooks/erp", json={"url": shown, "active": False}).status_code == 200
    assert api.put("/api/v1/webhooks/erp", json={"url": shown}).status_code == 200
    assert hook(uow).url == real
    f.enrol(uow, phone="0912-000-009")
    assert deliver(uow) == (1, 0)
    (post,) = receiver.posts
    assert post["path"] == "/omo?token=abc123&v=2"
    assert post["headers"]["Authorization"] == "Basic " + base64.b64encode(b"omo:pa55w0rd").decode()


DAYS_3 = timedelta(hours=72)


def fail_until(
    uow: UnitOfWork, receiver: Receiver, start: datetime, end: datetime, after: timedelta | None
) -> list[tuple[datetime, bool]]:
    """Every attempt the back-off allows from `start` to `end`, each refused by the receiver:
    when it was made and whether it switched the subscription off."""
    attempts, at = [], start
    while at <= end:
        clock.set_clock(lambda at=at: at)
        receiver.statuses = [500]
        report = delivery.deliver_due(uow, settle_s=0, switch_off_after=after)
        if report.failed == 0:  # switched off (or nothing due): no attempt made
            break
        attempts.append((at, report.switched_off == ["erp"]))
        row = hook(uow)
        if row.next_at is None:
            break
        at = clock.as_utc(row.next_at)
    receiver.statuses = []
    return attempts


def test_a_receiver_failing_for_days_is_switched_off_and_back_on(
    uow: UnitOfWork, receiver: Receiver
) -> None:
    from omo.audit.models import AuditEntry

    subscribe(uow, receiver.url)
    f.enrol(uow, phone="0912-000-201")
    t0 = datetime.now(UTC)
    attempts = fail_until(uow, receiver, t0, t0 + timedelta(days=10), DAYS_3)
    offs = [n for n, (_at, off) in enumerate(attempts) if off]
    assert offs == [len(attempts) - 1]  # the last attempt switched it off, and only that one
    at_off = attempts[-1][0]
    # the first attempt 72 h after the first failure (and the tenth at least), not before
    assert at_off - t0 >= DAYS_3 and attempts[-2][0] - t0 < DAYS_3 and len(attempts) >= 10
    row = hook(uow)
    assert (row.active, row.failures, row.next_at) == (False, len(attempts), None)
    assert clock.as_utc(row.switched_off_at) == at_off  # type: ignore[arg-type]
    assert clock.as_utc(row.failing_since) == t0  # type: ignore[arg-type]
    read = webhooks.get_webhook(uow, name="erp")
    assert read.switched_off_at == at_off and read.failing_since == t0 and not read.active
    with uow.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "webhook.switched_off"))
        assert entry is not None and entry.target == "webhook:erp"
        assert entry.detail["last_error"] == "HTTP 500"
        told = s.scalar(select(OutboxMessage).where(OutboxMessage.topic == "WebhookSwitchedOff"))
        assert told is not None and told.payload["webhook"] == "erp"
        assert told.payload["failures"] == len(attempts)

    clock.set_clock(lambda: at_off + timedelta(days=30))  # off: nothing posted, however late
    assert deliver(uow) == (0, 0) and receiver.posts == []
    f.enrol(uow, phone="0912-000-202")  # facts published while it is off wait for it
    back = webhooks.put_webhook(uow, name="erp", data=WebhookIn(url=receiver.url), actor="t")[0]
    assert back.active and back.switched_off_at is None and back.failing_since is None
    keys = [k for _i, _t, k in facts(uow)]
    assert deliver(uow) == (len(keys), 0)  # at once, every fact it missed, in order
    assert receiver.keys() == keys
    assert hook(uow).failures == 0


def test_a_success_or_a_new_url_starts_the_count_again(uow: UnitOfWork, receiver: Receiver) -> None:
    from omo.testing.postgres import free_port

    subscribe(uow, receiver.url)
    f.enrol(uow, phone="0912-000-203")
    t0 = datetime.now(UTC)
    before = fail_until(uow, receiver, t0, t0 + timedelta(hours=60), DAYS_3)
    assert len(before) >= 10 and not any(off for _at, off in before)
    f.enrol(uow, phone="0912-000-204")
    clock.set_clock(lambda: t0 + timedelta(hours=70))
    assert deliver(uow) == (2, 0)  # it answered: the run of failures is over
    assert hook(uow).failing_since is None
    f.enrol(uow, phone="0912-000-205")
    t1 = t0 + timedelta(hours=71)
    again = fail_until(uow, receiver, t1, t1 + timedelta(hours=71), DAYS_3)
    assert len(again) >= 10 and not any(off for _at, off in again)  # 71 h from its new start
    assert clock.as_utc(hook(uow).failing_since) == t1  # type: ignore[arg-type]

    # a new URL is a new receiver: its failures count from its own first
    gone = f"http://127.0.0.1:{free_port()}/gone"
    webhooks.put_webhook(uow, name="erp", data=WebhookIn(url=gone), actor="t")
    assert hook(uow).failing_since is None
    t2 = t1 + timedelta(hours=72)
    clock.set_clock(lambda: t2)
    assert deliver(uow) == (0, 1)
    row = hook(uow)
    assert row.active and clock.as_utc(row.failing_since) == t2  # type: ignore[arg-type]


def test_a_scheduler_that_did_not_run_for_days_does_not_switch_one_off_at_once(
    uow: UnitOfWork, receiver: Receiver
) -> None:
    subscribe(uow, receiver.url)
    f.enrol(uow, phone="0912-000-206")
    t0 = datetime.now(UTC)
    first = fail_until(uow, receiver, t0, t0, DAYS_3)  # one failure, then no pass for 5 days
    later = fail_until(uow, receiver, t0 + timedelta(days=5), t0 + timedelta(days=5), DAYS_3)
    assert len(first) == len(later) == 1 and not later[0][1]
    assert hook(uow).active and hook(uow).failures == 2  # 10 attempts in a row are wanted too
    # never, when the setting says so
    never = fail_until(uow, receiver, t0 + timedelta(days=6), t0 + timedelta(days=10), None)
    assert len(never) > 10 and not any(off for _at, off in never) and hook(uow).active


def test_the_scheduler_pass_switches_off_after_the_hours_set(
    uow: UnitOfWork, receiver: Receiver, settings: Any
) -> None:
    from omo.journeys import service as journeys

    subscribe(uow, receiver.url)
    f.enrol(uow, phone="0912-000-207")
    t0 = datetime.now(UTC)
    fail_until(uow, receiver, t0, t0 + timedelta(hours=12), None)  # ten failures or so
    assert hook(uow).failures >= 10
    when = clock.as_utc(hook(uow).next_at)  # type: ignore[arg-type]
    clock.set_clock(lambda: when)
    receiver.statuses = [500, 500]
    kept = journeys.run_jobs(uow, settings=settings.model_copy(
        update={"webhook_switch_off_after_h": 0, "outbox_settle_s": 0}), adapters={})  # fmt: skip
    assert kept.webhooks is not None and kept.webhooks.switched_off == [] and hook(uow).active
    when = clock.as_utc(hook(uow).next_at)  # type: ignore[arg-type]
    clock.set_clock(lambda: when)
    off = journeys.run_jobs(uow, settings=settings.model_copy(
        update={"webhook_switch_off_after_h": 12, "outbox_settle_s": 0}), adapters={})  # fmt: skip
    assert off.webhooks is not None and off.webhooks.switched_off == ["erp"]
    assert not hook(uow).active
