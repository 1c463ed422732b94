"""The outbox kept to its retention period (SQLite and PostgreSQL): facts past it, once read by
the journeys' dispatcher, go from the oldest up, never the newest; a subscription behind them is
moved past them and says how many it never got; a poller behind them is refused, not answered
as if nothing were lost."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import hypothesis
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from omo.audit.models import AuditEntry
from omo.db import UnitOfWork
from omo.journeys import runner
from omo.journeys import service as journeys
from omo.messaging import outbox
from omo.messaging import retention as kept_facts
from omo.messaging.models import OutboxMessage, OutboxPruning
from omo.settings import Settings
from omo.shared import clock
from omo.webhooks import retention
from omo.webhooks import service as webhooks
from omo.webhooks.models import Webhook
from omo.webhooks.schemas import WebhookIn
from tests import factories as f
from tests.integration.test_webhooks import Receiver

DAY0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
def inbox() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def at(day: int) -> None:
    moment = DAY0 + timedelta(days=day)
    clock.set_clock(lambda: moment)


def ids(uow: UnitOfWork) -> list[int]:
    with uow.read() as s:
        return list(s.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))


def put(uow: UnitOfWork, name: str, url: str, **kw: Any) -> None:
    webhooks.put_webhook(uow, name=name, data=WebhookIn(url=url, **kw), actor="test")


def jobs(uow: UnitOfWork, settings: Settings, days: int = 90) -> int:
    kept = settings.model_copy(update={"outbox_retention_days": days})
    return journeys.run_jobs(uow, settings=kept, adapters={}).pruned


def test_facts_past_retention_go_and_whoever_was_behind_them_is_told(
    uow: UnitOfWork, settings: Settings, api: TestClient, inbox: Receiver
) -> None:
    at(0)
    f.store(uow)
    put(uow, "live", inbox.url)
    put(uow, "off", inbox.url, active=False)  # switched off from the start: holds nothing
    put(uow, "orders", inbox.url, active=False, topics=["OrderRecorded"])
    f.enrol(uow, phone="0912-100-001")
    f.enrol(uow, phone="0912-100-002")
    old = ids(uow)
    assert len(old) == 2
    assert jobs(uow, settings) == 0  # read by the journeys, posted to "live": not old yet
    at(30)
    f.enrol(uow, phone="0912-100-003")
    at(95)
    f.enrol(uow, phone="0912-100-004")
    before = {w.name: w for w in webhooks.list_webhooks(uow)}
    assert before["off"].position == 0 and before["off"].waiting == 4
    assert before["orders"].waiting == 0

    at(100)  # the cutoff is day 10: the two of day 0 go
    assert jobs(uow, settings) == 2
    kept = ids(uow)
    assert len(kept) == 2 and min(kept) > max(old)
    now = {w.name: w for w in webhooks.list_webhooks(uow)}
    assert now["live"].position == max(kept) and now["live"].skipped == 0
    assert now["live"].delivered == 4 and len(inbox.posts) == 4
    assert (now["off"].position, now["off"].skipped, now["off"].waiting) == (max(old), 2, 2)
    # the orders' subscription lost none of its topic: moved past them, nothing said
    assert (now["orders"].position, now["orders"].skipped) == (max(old), 0)
    with uow.read() as s:
        told = s.scalars(select(AuditEntry).where(AuditEntry.action == "webhook.skipped")).all()
        assert [(e.target, e.detail["facts"], e.detail["through"]) for e in told] == [
            ("webhook:off", 2, max(old))
        ]
        [pruning] = s.scalars(select(OutboxPruning)).all()
        assert (pruning.through_id, pruning.deleted) == (max(old), 2)
        assert pruning.cutoff == DAY0 + timedelta(days=10)
    metrics = api.get("/metrics").text  # what an operator alerts on
    assert 'omo_webhook_skipped{webhook="off"} 2.0' in metrics
    assert 'omo_webhook_skipped{webhook="live"} 0.0' in metrics

    # switched back on, it gets what is kept, in order
    put(uow, "off", inbox.url)
    inbox.posts.clear()
    assert jobs(uow, settings) == 0
    assert [p["body"]["id"] for p in inbox.posts] == kept

    # a poller behind the removal is refused with where to go on; from the oldest kept is fine
    behind = api.get("/api/v1/facts", params={"after": min(old)})
    assert behind.status_code == 410, behind.text
    [detail] = behind.json()["detail"]
    assert detail["type"] == "facts_removed" and detail["loc"] == ["query", "after"]
    assert detail["ctx"] == {"after": min(old), "through": max(old)}
    for after in (0, max(old)):
        page = api.get("/api/v1/facts", params={"after": after})
        assert [x["id"] for x in page.json()["facts"]] == kept, after
    moved = api.put("/api/v1/webhooks/off", json={"url": inbox.url, "position": min(old)})
    assert moved.status_code == 422 and moved.json()["detail"][0]["type"] == "facts_removed"
    assert api.put("/api/v1/webhooks/off", json={"url": inbox.url, "position": max(old)}).is_success

    # both kept facts are old by day 200, but the newest stays: SQLite would give its id again
    at(200)
    assert jobs(uow, settings) == 1
    assert ids(uow) == [max(kept)]
    f.enrol(uow, phone="0912-100-005")
    assert ids(uow)[-1] > max(kept)
    assert jobs(uow, settings, days=0) == 0  # 0: every fact kept, however old
    at(400)
    assert jobs(uow, settings) == 1 and len(ids(uow)) == 1


def test_what_the_journeys_have_not_read_and_what_is_being_posted_stay(
    uow: UnitOfWork, settings: Settings, inbox: Receiver
) -> None:
    at(0)
    for n in range(6):
        f.enrol(uow, phone=f"0912-200-{n:03d}")
    facts = ids(uow)
    at(200)
    # nothing read by the dispatcher yet: nothing goes, however old
    assert retention.prune_outbox(uow, retention_days=90) == 0
    settings_off = settings.model_copy(update={"outbox_retention_days": 0})
    journeys.run_jobs(uow, settings=settings_off, adapters={}, deliver=False)  # read, kept
    # a subscription being posted right now, at the second fact: the removal waits there
    put(uow, "erp", inbox.url, position=facts[1])
    until = clock.now() + timedelta(minutes=5)
    uow.run(lambda s: s.execute(update(Webhook).values(leased_until=until)))
    assert retention.prune_outbox(uow, retention_days=90) == 2
    assert ids(uow) == facts[2:]
    uow.run(lambda s: s.execute(update(Webhook).values(leased_until=None)))
    # a pass's budget, a chunk a transaction: the rest waits for the next pass (never the newest)
    assert retention.prune_outbox(uow, retention_days=90, budget=2) == 2
    assert retention.prune_outbox(uow, retention_days=90) == 1
    assert ids(uow) == facts[-1:]
    hook = webhooks.get_webhook(uow, name="erp")
    assert (hook.position, hook.skipped) == (facts[-2], 3)
    with uow.read() as s:
        throughs = list(s.scalars(select(OutboxPruning.through_id).order_by(OutboxPruning.id)))
    assert throughs == [facts[1], facts[3], facts[4]]


TOPICS = ["OrderRecorded", "TierChanged", "MemberEnrolled"]
STEPS = st.lists(  # each: subscribe, publish, read, wait, lease or release, remove
    st.tuples(
        st.none() | st.integers(0, 3),  # a subscription made (switched off: it posts nothing)
        st.lists(st.integers(0, 2), max_size=4),  # facts published, by topic
        st.integers(0, 10),  # facts the journeys' dispatcher reads
        st.none() | st.integers(0, 3),  # a subscription leased (a post in flight) or released
        st.integers(0, 60),  # days waited
        st.integers(0, 8),  # the removal's budget (0: no pass)
    ),
    min_size=1,
    max_size=12,
)


@hypothesis.settings(
    max_examples=int(os.environ.get("OMO_EXAMPLES", "15")),
    derandomize=os.environ.get("CI") == "true",
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(STEPS)
def test_any_sequence_of_facts_reads_subscriptions_and_removals_keeps_the_books(
    uow: UnitOfWork, steps: list[tuple[int | None, list[int], int, int | None, int, int]]
) -> None:
    """Whatever is published, read, subscribed, posted and removed, in any order: what is kept
    is the newest run of facts, the newest always among it; nothing unread or younger than the
    retention goes; an id is never given twice; each subscription's skipped and waiting add up
    to the facts of its topics published after it began; one being posted is not moved."""
    uow.run(_reset)
    now = DAY0
    clock.set_clock(lambda: now)
    published: dict[int, tuple[str, datetime]] = {}  # id -> topic, when
    read_through = 0  # the journeys' dispatcher has read every fact up to here
    removed: set[int] = set()
    subs: dict[str, tuple[int, list[str]]] = {}  # name -> where it began, topics
    leased: dict[str, tuple[int, datetime]] = {}  # name -> its position, the lease's end
    for n, (sub, topics_, batch, lease, days, budget) in enumerate(steps):
        if sub is not None and f"h{sub}" not in subs:
            topics = [] if sub == 0 else TOPICS[:sub]
            put(uow, f"h{sub}", "http://127.0.0.1:9/omo", topics=topics, active=False)
            subs[f"h{sub}"] = (max([*published, 0]), topics)
        for k, topic in enumerate(topics_):
            uow.run(partial(_publish, topic=TOPICS[topic], key=f"fact:{n}:{k}", now=now))
            new = ids(uow)[-1]
            assert new > max([*published, 0]), "an id given again"
            published[new] = (TOPICS[topic], now)
        if batch:
            got, _ = uow.run(partial(runner.enter_from_outbox, now=now, batch=batch))
            if got:
                read_through = [i for i in ids(uow) if i > read_through][got - 1]
        now = now + timedelta(days=days)
        if lease is not None and f"h{lease}" in subs:
            name = f"h{lease}"
            until = None if name in leased else now + timedelta(minutes=5)
            uow.run(partial(_lease, name=name, until=until))
            if until is None:
                del leased[name]
            else:
                leased[name] = (webhooks.get_webhook(uow, name=name).position, until)
        if budget:
            before = set(ids(uow))
            cutoff = now - timedelta(days=30)
            live = [pos for pos, until in leased.values() if until > now]
            prunable = 0  # the oracle: the oldest run of facts that may go
            for i in sorted(before):
                if (published[i][1] >= cutoff or i > read_through or i == max(published)
                        or any(i > pos for pos in live)):  # fmt: skip
                    break
                prunable += 1
            positions = {w.name: w.position for w in webhooks.list_webhooks(uow)}
            retention.prune_outbox(uow, retention_days=30, budget=budget)
            gone = before - set(ids(uow))
            removed |= gone
            assert len(gone) == min(prunable, budget)
            assert all(published[i][1] < cutoff and i <= read_through for i in gone)
            for name, (position, until) in leased.items():
                if until <= now:  # the pass that leased it died: the lease has run out
                    continue
                assert all(i <= position for i in gone), "removed past a post in flight"
                assert webhooks.get_webhook(uow, name=name).position == positions[name]

        kept = ids(uow)
        assert kept == sorted(set(published) - removed)
        assert not removed or not kept or max(removed) < min(kept), "not the oldest run"
        if published:
            assert max(published) in kept, "the newest fact removed"
        with uow.read() as s:
            assert kept_facts.pruned_through(s) == max([*removed, 0])
        for w in webhooks.list_webhooks(uow):
            began, topics = subs[w.name]
            theirs = [
                i for i in published if i > began and (not topics or published[i][0] in topics)
            ]
            assert w.skipped == sum(1 for i in theirs if i <= w.position)
            assert w.skipped + w.waiting == len(theirs)
            assert all(i in removed for i in theirs if i <= w.position)


def _reset(s: Session) -> None:
    for table in ("outbox", "outbox_prunings", "webhooks", "journey_scans", "audit_log"):
        s.execute(sa.text(f"DELETE FROM {table}"))


def _publish(s: Session, *, topic: str, key: str, now: datetime) -> None:
    outbox.publish(s, topic=topic, key=key, payload={}, now=now)


def _lease(s: Session, *, name: str, until: datetime | None) -> None:
    s.execute(update(Webhook).where(Webhook.name == name).values(leased_until=until))
