"""The outbox kept to its retention period (SQLite and PostgreSQL): facts past it, once read by
the journeys' dispatcher, go from the oldest up, never the newest; a subscription behind them is
moved past them and says how many it never got; a poller behind them is refused, not answered
as if nothing were lost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from omo.audit.models import AuditEntry
from omo.db import UnitOfWork
from omo.journeys import service as journeys
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
