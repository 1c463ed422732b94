"""A month of the seed playbook over a demo world (SQLite + PostgreSQL): a scheduler pass a day
at 10:00 Taipei, then who entered and who received what, checked against the world's own data —
trigger windows, birthdays, segments, consent, caps, quiet hours, the control group — and a
last pass that changes nothing."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import select

from omo.analytics.refresh import RefreshOptions, refresh
from omo.db import UnitOfWork
from omo.demo.load import DemoSpec, load_demo
from omo.journeys import playbook
from omo.journeys import service as journeys
from omo.journeys.models import Journey, JourneyEntry
from omo.members.models import Consent
from omo.messaging.adapters import Outgoing
from omo.messaging.models import Message
from omo.settings import Settings
from omo.shared import clock

SPEC = DemoSpec(people=1000, seed=5, months=18, until=date(2026, 11, 1))
START = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # 10:00 in Taipei, the world's last day
DAYS = 30
TPE = ZoneInfo("Asia/Taipei")


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[datetime, Outgoing]] = []

    def send(self, message: Outgoing) -> str:
        self.sent.append((clock.now(), message))
        return "ok"


def test_a_month_of_the_playbook_on_a_demo_world(
    engine: sa.Engine, uow: UnitOfWork, settings: Settings, tmp_path: Path
) -> None:
    load_demo(engine, SPEC, tmp_path / "truth")
    clock.set_clock(lambda: START)
    refresh(uow, RefreshOptions(as_of=START))
    playbook.seed(uow, enable=True)
    settings = settings.model_copy(update={"outbox_settle_s": 0})
    box = Outbox()
    adapters: dict[str, Any] = {c: box for c in ("email", "sms", "line", "push")}
    moment = START
    for _ in range(DAYS + 1):
        clock.set_clock(lambda m=moment: m)
        journeys.run_jobs(uow, settings=settings, adapters=adapters)
        moment += timedelta(days=1)
    last = START + timedelta(days=DAYS)

    entered = _entered(engine)
    members = _members(engine)
    active = {m for m, row in members.items() if row["status"] == "active"}

    # dormant 60 days (window 7): last order in (first pass - 67 d, last pass - 60 d]
    assert entered["win_back"] == {
        m for m in active
        if (o := members[m]["last_order_at"]) is not None
        and START - timedelta(days=67) < o <= last - timedelta(days=60)
    }  # fmt: skip
    # joined 30 days ago (window 7) and never bought
    assert entered["first_purchase_nudge"] == {
        m for m in active
        if START - timedelta(days=37) < members[m]["joined_at"] <= last - timedelta(days=30)
        and not members[m]["order_count"]
    }  # fmt: skip
    # birthdays: the passes ran from 1 November to 1 December (local)
    assert entered["birthday"] == {
        m for m in active
        if members[m]["birth_date"] is not None and members[m]["birth_date"].month in (11, 12)
    }  # fmt: skip
    assert entered["upgrade_challenge"] == {
        m for m in active if members[m]["segment"] == "high_potential"
    }
    assert sum(len(v) for v in entered.values()) > 100  # the month did something

    messages = _messages(engine)
    granted = _granted(engine)
    groups = _groups(engine)
    sent_keys = [m.key for _, m in box.sent]
    # every message the adapters were given is a sent message, once
    assert sorted(sent_keys) == sorted(k for k, m in messages.items() if m["state"] == "sent")
    assert len(set(sent_keys)) == len(sent_keys)
    for key, m in messages.items():
        # no member of a control group is ever messaged
        assert groups[m["entry"]] == "treatment", key
        # consent: refused exactly when the member did not say yes on that channel
        assert (m["reason"] == "consent") == ((m["member_id"], m["channel"]) not in granted), key
        assert m["state"] in ("sent", "suppressed"), (key, m)
    # caps: never more than the channel's cap in any 7 days
    by_channel: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    for m in messages.values():
        if m["state"] == "sent":
            by_channel[m["member_id"], m["channel"]].append(m["created_at"])
    for (_, channel), times in by_channel.items():
        cap = settings.message_caps[channel]
        for t in times:
            assert sum(t - timedelta(days=7) < u <= t for u in times) <= cap
    # quiet hours: nothing delivered between 21:00 and 09:00 Taipei time
    assert all(9 <= at.astimezone(TPE).hour < 21 for at, _ in box.sent)
    assert len(box.sent) > 10

    # one more pass at the same moment: nothing new
    before = (len(box.sent), len(messages), sum(len(v) for v in entered.values()))
    journeys.run_jobs(uow, settings=settings, adapters=adapters)
    after = (len(box.sent), len(_messages(engine)), sum(len(v) for v in _entered(engine).values()))
    assert after == before


def _entered(engine: sa.Engine) -> dict[str, set[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    with engine.connect() as conn:
        for key, member in conn.execute(
            select(Journey.key, JourneyEntry.member_id).join(
                Journey, Journey.id == JourneyEntry.journey_id
            )
        ):
            out[key].add(member)
    return out


def _members(engine: sa.Engine) -> dict[int, dict[str, Any]]:
    sql = """
        SELECT m.id, m.status, m.joined_at, m.birth_date, s.last_order_at, s.order_count,
               c.segment
        FROM members m LEFT JOIN member_stats s ON s.member_id = m.id
        LEFT JOIN member_scores c ON c.member_id = m.id"""
    out = {}
    with engine.connect() as conn:
        for row in conn.execute(sa.text(sql)).mappings():
            r = dict(row)
            for k in ("joined_at", "last_order_at"):
                r[k] = _utc(r[k])
            if isinstance(r["birth_date"], str):
                r["birth_date"] = date.fromisoformat(r["birth_date"])
            out[r["id"]] = r
    return out


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _messages(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Message.key, Message.member_id, Message.channel, Message.state,
                   Message.reason, Message.created_at)
        )  # fmt: skip
        return {
            r.key: {
                "member_id": r.member_id,
                "channel": r.channel,
                "state": r.state,
                "reason": r.reason,
                "created_at": r.created_at,
                "entry": int(r.key.split(":")[1]),
            }
            for r in rows
        }


def _granted(engine: sa.Engine) -> set[tuple[int, str]]:
    with engine.connect() as conn:
        return {
            (m, c)
            for m, c in conn.execute(
                select(Consent.member_id, Consent.channel).where(Consent.granted.is_(True))
            )
        }


def _groups(engine: sa.Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(JourneyEntry.id, JourneyEntry.grp)).all())
