"""Journeys over a moving clock on SQLite and PostgreSQL: who entered, who received what, and
exactly — consent, caps, quiet hours, control group, idempotency, retries and dead letters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from omo.db import UnitOfWork
from omo.events.schemas import EventIn
from omo.ingest import service as ingest
from omo.journeys import definition as d
from omo.journeys import playbook, runner
from omo.journeys import report as reports
from omo.journeys import service as journeys
from omo.journeys.models import JourneyEntry, JourneyStep
from omo.members.models import Member, MemberTag
from omo.messaging import outbox
from omo.messaging import service as messaging
from omo.messaging.adapters import DeliveryFailed, FileAdapter, Outgoing
from omo.messaging.models import Message
from omo.settings import Settings
from omo.shared import clock
from omo.shared.errors import ValidationFailed
from omo.tasks.models import StaffTask
from tests import factories as f

# 10:00 in Taipei (02:00 UTC): outside the quiet hours 21:00-09:00
DAY0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@dataclass
class Recorder:
    """An adapter that records what it was given; fails the first `fail` sends of each key."""

    fail: int = 0
    permanent: bool = False
    sent: list[Outgoing] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)

    def send(self, message: Outgoing) -> str:
        n = self.tries[message.key] = self.tries.get(message.key, 0) + 1
        if n <= self.fail:
            raise DeliveryFailed(f"gateway down (try {n})", permanent=self.permanent)
        self.sent.append(message)
        return f"ref-{message.key}"


def adapters(rec: Recorder) -> dict[str, Any]:
    return {c: rec for c in ("email", "sms", "line", "push")}


def at(moment: datetime) -> None:
    clock.set_clock(lambda: moment)


def jobs(uow: UnitOfWork, settings: Settings, rec: Recorder) -> Any:
    # one writer at a time here: facts need not settle before they are read
    now = settings.model_copy(update={"outbox_settle_s": 0})
    return journeys.run_jobs(uow, settings=now, adapters=adapters(rec))


def count(uow: UnitOfWork, model: Any, *where: Any) -> int:
    with uow.read() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def enrol(uow: UnitOfWork, n: int, *, consents: dict[str, bool], lang: str | None = None) -> int:
    member = f.enrol(
        uow, consents=consents, preferred_language=lang,
        identifiers=[{"kind": "phone", "value": f"09{n:08d}"},
                     {"kind": "email", "value": f"m{n}@example.com"}],
    )  # fmt: skip
    return member.member.id


def welcome(uow: UnitOfWork, *, share: float = 0.0, channel: str = "email") -> None:
    playbook.seed(uow)  # the coupon templates
    journeys.save(
        uow, key="hello", actor="t",
        raw={"name": "hello", "trigger": {"kind": "joined"}, "control_share": share,
             "steps": [{"type": "issue_coupon", "template": "FIRST100"},
                       {"type": "send", "channel": channel, "template": "welcome"}]},
    )  # fmt: skip
    journeys.set_enabled(uow, key="hello", enabled=True)


def test_welcome_reaches_consenting_members_once(uow: UnitOfWork, settings: Settings) -> None:
    at(DAY0)
    welcome(uow)
    yes = [enrol(uow, n, consents={"email": True}) for n in range(1, 5)]
    no = [enrol(uow, n, consents={"email": False}) for n in range(5, 7)]
    silent = enrol(uow, 7, consents={})  # never asked: no consent
    rec = Recorder()
    report = jobs(uow, settings, rec)
    assert report.entered["hello"] == 7
    assert report.delivery.sent == 4
    assert sorted(m.address for m in rec.sent) == sorted(f"m{n}@example.com" for n in range(1, 5))
    with uow.read() as s:
        states = dict(
            s.execute(
                select(Message.member_id, Message.reason).where(Message.journey_id.is_not(None))
            ).all()
        )
    assert {m: states[m] for m in [*no, silent]} == {m: "consent" for m in [*no, silent]}
    assert all(states[m] is None for m in yes)
    # every one got the coupon and the message names it
    assert all("FIRST100" not in m.body and "首購優惠券" in m.body for m in rec.sent)
    # a second pass, and a third an hour later, send nothing new
    again = jobs(uow, settings, rec)
    at(DAY0 + timedelta(hours=1))
    jobs(uow, settings, rec)
    assert again.entered.get("hello", 0) == 0 and len(rec.sent) == 4
    with uow.read() as s:  # every fact the pass read is delivered: no backlog is left
        assert outbox.backlog(s) == {}
    assert count(uow, JourneyStep) == 7 * 2


def test_english_members_get_the_english_template(uow: UnitOfWork, settings: Settings) -> None:
    at(DAY0)
    welcome(uow)
    enrol(uow, 1, consents={"email": True}, lang="en")
    enrol(uow, 2, consents={"email": True}, lang="zh-TW")
    rec = Recorder()
    jobs(uow, settings, rec)
    by_address = {m.address: m for m in rec.sent}
    assert by_address["m1@example.com"].subject.startswith("Welcome to")
    assert by_address["m2@example.com"].subject.startswith("歡迎加入")


def test_control_group_is_never_messaged(uow: UnitOfWork, settings: Settings) -> None:
    at(DAY0)
    welcome(uow, share=0.5)
    ids = [enrol(uow, n, consents={"email": True}) for n in range(1, 41)]
    rec = Recorder()
    jobs(uow, settings, rec)
    with uow.read() as s:
        groups = dict(s.execute(select(JourneyEntry.member_id, JourneyEntry.grp)).all())
    control = {m for m in ids if groups[m] == "control"}
    assert 5 <= len(control) <= 35  # drawn, not all or nothing
    messaged = {m.key for m in rec.sent}
    assert len(messaged) == 40 - len(control)
    with uow.read() as s:
        got = set(s.scalars(select(Message.member_id)))
    assert got.isdisjoint(control)
    # the draw is the journey's: the same member is drawn the same way on every run
    jobs(uow, settings, rec)
    with uow.read() as s:
        assert dict(s.execute(select(JourneyEntry.member_id, JourneyEntry.grp)).all()) == groups


def test_quiet_hours_hold_messages_until_morning(uow: UnitOfWork, settings: Settings) -> None:
    night = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)  # 23:30 in Taipei
    at(night)
    welcome(uow)
    enrol(uow, 1, consents={"email": True})
    rec = Recorder()
    jobs(uow, settings, rec)
    assert rec.sent == []
    with uow.read() as s:
        due = s.scalar(select(Message.next_attempt_at))
    assert due == datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # 09:00 Taipei
    at(datetime(2026, 3, 3, 0, 59, tzinfo=UTC))
    jobs(uow, settings, rec)
    assert rec.sent == []
    at(datetime(2026, 3, 3, 1, 0, tzinfo=UTC))
    jobs(uow, settings, rec)
    assert len(rec.sent) == 1


def test_frequency_cap_per_channel(uow: UnitOfWork, settings: Settings) -> None:
    at(DAY0)
    capped = settings.model_copy(update={"message_caps": {"sms": 2}})
    playbook.seed(uow)
    for n in range(3):
        journeys.save(
            uow, key=f"j{n}", actor="t",
            raw={"name": f"j{n}", "trigger": {"kind": "joined"}, "control_share": 0,
                 "steps": [{"type": "send", "channel": "sms", "template": "first_purchase_offer"}]},
        )  # fmt: skip
        journeys.set_enabled(uow, key=f"j{n}", enabled=True)
    enrol(uow, 1, consents={"sms": True})
    rec = Recorder()
    jobs(uow, capped, rec)
    assert len(rec.sent) == 2
    with uow.read() as s:
        reasons = sorted(str(r) for r in s.scalars(select(Message.reason)))
    assert reasons == ["None", "None", "cap"]
    # seven days on, the window has room again
    at(DAY0 + timedelta(days=7, minutes=1))
    with uow.write() as s:
        m = messaging.queue(
            s, member_id=1, channel="sms", template="first_purchase_offer", key="later",
            context={}, settings=capped,
        )  # fmt: skip
        assert m.state == "queued"


def test_failing_adapter_retried_then_dead_lettered(uow: UnitOfWork, settings: Settings) -> None:
    at(DAY0)
    welcome(uow)
    enrol(uow, 1, consents={"email": True})
    enrol(uow, 2, consents={"email": True})
    flaky = Recorder(fail=2)
    jobs(uow, settings, flaky)
    assert flaky.sent == []
    # back-off: 1 minute after the first failure, 2 after the second
    at(DAY0 + timedelta(minutes=1))
    jobs(uow, settings, flaky)
    assert flaky.sent == []
    at(DAY0 + timedelta(minutes=3))
    jobs(uow, settings, flaky)
    assert len(flaky.sent) == 2 and set(flaky.tries.values()) == {3}
    with uow.read() as s:
        rows = [(m.state, m.attempts) for m in s.scalars(select(Message))]
    assert rows == [("sent", 2), ("sent", 2)]
    # a gateway that never takes it: dead after max attempts, sent never
    limited = settings.model_copy(update={"message_max_attempts": 3})
    enrol(uow, 3, consents={"email": True})
    down = Recorder(fail=99)
    moment = DAY0 + timedelta(minutes=3)
    for _ in range(6):
        jobs(uow, limited, down)
        moment += timedelta(hours=1)
        at(moment)
    with uow.read() as s:
        dead = s.execute(
            select(Message.key, Message.attempts, Message.last_error).where(Message.state == "dead")
        ).one()
    assert dead.attempts == 3 and "gateway down" in (dead.last_error or "")
    assert down.tries == {dead.key: 3} and down.sent == []
    # dead letters are kept and can be put back once the provider is fixed
    assert messaging.retry_dead(uow) == 1
    fixed = Recorder()
    jobs(uow, limited, fixed)
    assert [m.key for m in fixed.sent] == [dead.key]


def test_permanent_failure_is_not_retried(uow: UnitOfWork, settings: Settings) -> None:
    at(DAY0)
    welcome(uow)
    enrol(uow, 1, consents={"email": True})
    refused = Recorder(fail=9, permanent=True)
    jobs(uow, settings, refused)
    assert list(refused.tries.values()) == [1]
    assert count(uow, Message, Message.state == "dead") == 1


def test_opt_out_while_waiting_withdraws_the_message(uow: UnitOfWork, settings: Settings) -> None:
    at(datetime(2026, 3, 2, 15, 30, tzinfo=UTC))  # queued for the morning
    welcome(uow)
    member = enrol(uow, 1, consents={"email": True})
    rec = Recorder()
    jobs(uow, settings, rec)
    with uow.read() as s:
        token = s.scalar(select(Message.token))
    assert messaging.unsubscribe(uow, token=token) == "email"
    at(datetime(2026, 3, 3, 2, 0, tzinfo=UTC))
    report = jobs(uow, settings, rec)
    assert rec.sent == [] and report.delivery.withdrawn == 1
    with uow.read() as s:
        assert s.scalar(select(Message.reason).where(Message.member_id == member)) == "unsubscribed"


def test_a_month_of_time_triggers(uow: UnitOfWork, settings: Settings) -> None:
    """Joined → nothing bought in 30 days → SMS; birthdays in their month; a low NPS → a task
    for the home store and a tag; a dormant member → win-back; each once over the month."""
    at(DAY0 - timedelta(days=40))
    store = f.store(uow)
    playbook.seed(uow)
    for key in ("first_purchase_nudge", "birthday", "nps_care", "win_back"):
        journeys.save(
            uow, key=key, actor="t",
            raw={**playbook.JOURNEYS[key], "control_share": 0},
        )  # fmt: skip
        journeys.set_enabled(uow, key=key, enabled=True)
    all_channels = {"sms": True, "email": True, "line": True}
    quiet = enrol(uow, 1, consents=all_channels)  # never buys
    buyer = enrol(uow, 2, consents=all_channels)
    at(DAY0 - timedelta(days=39))
    f.post_order(uow, member_id=buyer, ordered_at=(DAY0 - timedelta(days=39)).isoformat())
    at(DAY0 - timedelta(days=20))
    late = enrol(uow, 3, consents=all_channels)  # joined 20 days before DAY0
    with uow.write() as s:
        s.get(Member, late).birth_date = datetime(1990, 3, 9).date()
        s.get(Member, late).join_store_id = store
    at(DAY0)
    rec = Recorder()
    first = jobs(uow, settings, rec)
    # day 0: members 1 and 2 joined 40 days ago, past the nudge's window (30-37 days); member
    # 3 has a March birthday
    assert first.entered == {
        "first_purchase_nudge": 0, "birthday": 1, "nps_care": 0, "win_back": 0
    }  # fmt: skip
    moment = DAY0
    for _ in range(30):  # a pass a day at 10:00 Taipei
        moment += timedelta(days=1)
        at(moment)
        jobs(uow, settings, rec)
    keyed = _entries_by_journey(uow)
    assert keyed["first_purchase_nudge"] == {late}  # joined day -20: 30 days on day 10
    assert keyed["birthday"] == {late}  # once in March, not once a day
    assert keyed["win_back"] == {buyer}  # last order day -39: dormant 60 days on day 21
    assert "nps_care" not in keyed and quiet not in keyed["win_back"]
    # a low NPS from member 3: a care task for their home store and a tag, once
    ingest.record_events(
        uow,
        batch=[EventIn.model_validate({
            "event_id": "nps-1", "kind": "feedback", "channel": "line",
            "occurred_at": moment.isoformat(), "survey": "nps", "score": 3, "member_id": late,
        })],
        principal=f.ADMIN, region="TW",
    )  # fmt: skip
    jobs(uow, settings, rec)
    jobs(uow, settings, rec)
    with uow.read() as s:
        tasks = s.execute(select(StaffTask.member_id, StaffTask.store_id, StaffTask.kind)).all()
        tags = list(s.scalars(select(MemberTag.tag).where(MemberTag.member_id == late)))
        suppressed = list(
            s.execute(select(Message.channel, Message.reason).where(Message.state == "suppressed"))
        )
    assert [tuple(t) for t in tasks] == [(late, store, "care_call")]
    assert tags == ["detractor"]
    # who received what, exactly: member 3 the nudge SMS and the birthday e-mail (their LINE
    # consent has no LINE id behind it), the buyer the win-back SMS (its follow-up e-mail
    # waits 14 days, past the month)
    got = sorted((m.key.split(":")[1], m.channel, m.address) for m in rec.sent)
    entry = _entry_ids(uow)
    assert got == sorted([
        (str(entry["first_purchase_nudge", late]), "sms", "+886900000003"),
        (str(entry["birthday", late]), "email", "m3@example.com"),
        (str(entry["win_back", buyer]), "sms", "+886900000002"),
    ])  # fmt: skip
    assert suppressed == [("line", "no_address")]


def _entry_ids(uow: UnitOfWork) -> dict[tuple[str, int], int]:
    from omo.journeys.models import Journey

    with uow.read() as s:
        rows = s.execute(
            select(Journey.key, JourneyEntry.member_id, JourneyEntry.id).join(
                Journey, Journey.id == JourneyEntry.journey_id
            )
        )
        return {(k, m): i for k, m, i in rows}


def _entries_by_journey(uow: UnitOfWork) -> dict[str, set[int]]:
    from omo.journeys.models import Journey

    with uow.read() as s:
        rows = s.execute(
            select(Journey.key, JourneyEntry.member_id).join(
                Journey, Journey.id == JourneyEntry.journey_id
            )
        )
        out: dict[str, set[int]] = {}
        for key, member in rows:
            out.setdefault(key, set()).add(member)
    return out


def test_steps_are_taken_once_even_when_run_again(uow: UnitOfWork, settings: Settings) -> None:
    at(DAY0)
    welcome(uow)
    enrol(uow, 1, consents={"email": True})
    with uow.write() as s:
        runner.enter_from_outbox(s, now=DAY0)
    with uow.read() as s:
        entry_id = s.scalar(select(JourneyEntry.id))
    cache: dict[Any, Any] = {}
    for _ in range(3):
        with uow.write() as s:
            runner.take_steps(s, entry_id=entry_id, now=DAY0, settings=settings, definitions=cache)
    assert count(uow, JourneyStep) == 2 and count(uow, Message) == 1


def test_report_measures_uplift_against_control(uow: UnitOfWork, settings: Settings) -> None:
    at(DAY0)
    welcome(uow, share=0.5)
    ids = [enrol(uow, n, consents={"email": True}) for n in range(1, 41)]
    jobs(uow, settings, Recorder())
    with uow.read() as s:
        groups = dict(s.execute(select(JourneyEntry.member_id, JourneyEntry.grp)).all())
    treated = [m for m in ids if groups[m] == "treatment"]
    control = [m for m in ids if groups[m] == "control"]
    # every treated member buys NT$300 within the window, one control member does; one more
    # treated order falls after the 14-day window and does not count
    at(DAY0 + timedelta(days=20))
    for m in treated:
        f.post_order(uow, member_id=m, ordered_at=(DAY0 + timedelta(days=2)).isoformat())
    f.post_order(uow, member_id=control[0], ordered_at=(DAY0 + timedelta(days=3)).isoformat())
    f.post_order(uow, member_id=treated[0], ordered_at=(DAY0 + timedelta(days=15)).isoformat())
    r = reports.report(uow, key="hello")
    assert (r.treatment.members, r.control.members) == (len(treated), len(control))
    assert r.treatment.converted == len(treated) and r.control.converted == 1
    assert str(r.treatment.revenue) == f"{300 * len(treated)}.00"
    assert r.uplift is not None and r.uplift.significant
    assert r.uplift.rate == pytest.approx(1 - 1 / len(control), abs=1e-6)
    assert r.messages == {"sent": len(treated)}


def test_bad_definitions_are_refused_and_change_nothing(uow: UnitOfWork) -> None:
    cases = [
        ({"name": "x", "trigger": {"kind": "moon_phase"}, "steps": []}, "trigger"),
        ({"name": "x", "trigger": {"kind": "joined"}, "steps": [{"type": "wait", "days": 1}]},
         "action"),
        ({"name": "x", "trigger": {"kind": "joined"}, "audience": "shoe_size > 3",
          "steps": [{"type": "add_tag", "tag": "a"}]}, "shoe_size"),
        ({"name": "x", "trigger": {"kind": "joined"},
          "steps": [{"type": "issue_coupon", "template": "NOPE"}]}, "NOPE"),
        ({"name": "x", "trigger": {"kind": "joined"},
          "steps": [{"type": "send", "channel": "sms", "template": "nope"}]}, "nope"),
        ({"name": "x", "trigger": {"kind": "joined"}, "control_share": 0.9,
          "steps": [{"type": "add_tag", "tag": "a"}]}, "control_share"),
    ]  # fmt: skip
    for raw, word in cases:
        with pytest.raises(ValidationFailed) as err:
            journeys.save(uow, key="bad", raw=raw, actor="t")
        assert word in str(err.value) or word in (err.value.field or ""), (raw, err.value)
    assert journeys.list_journeys(uow) == []


def test_new_version_keeps_members_on_theirs(uow: UnitOfWork, settings: Settings) -> None:
    at(DAY0)
    welcome(uow)
    enrol(uow, 1, consents={"email": True, "sms": True})
    with uow.write() as s:
        runner.enter_from_outbox(s, now=DAY0)
    changed = {"name": "hello", "trigger": {"kind": "joined"}, "control_share": 0,
               "steps": [{"type": "send", "channel": "sms", "template": "welcome"}]}  # fmt: skip
    read, created = journeys.save(uow, key="hello", raw=changed, actor="t")
    assert (read.version, created) == (2, False)
    rec = Recorder()
    jobs(uow, settings, rec)
    assert [m.channel for m in rec.sent] == ["email"]  # entered under version 1


def test_file_adapter_writes_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    adapter = FileAdapter(out)
    adapter.send(
        Outgoing(key="k1", channel="sms", address="+886912345678", subject=None, body="嗨")
    )
    adapter.send(Outgoing(key="k2", channel="email", address="a@b.c", subject="s", body="b"))
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [(x["key"], x["body"]) for x in lines] == [("k1", "嗨"), ("k2", "b")]


def test_in_control_is_stable_and_near_the_share() -> None:
    drawn = [d.in_control(m, salt=12345, share=0.1) for m in range(1, 20_001)]
    assert drawn == [d.in_control(m, salt=12345, share=0.1) for m in range(1, 20_001)]
    assert 0.09 < sum(drawn) / len(drawn) < 0.11
    other = [d.in_control(m, salt=999, share=0.1) for m in range(1, 20_001)]
    assert other != drawn


def test_product_bought_fires_from_the_outbox(uow: UnitOfWork, settings: Settings) -> None:
    from omo.checkout import refunds

    at(DAY0)
    journeys.save(
        uow, key="after-mug", actor="t",
        raw={"name": "after mug", "trigger": {"kind": "product_bought", "skus": ["MUG-1"]},
             "control_share": 0, "steps": [{"type": "add_tag", "tag": "mug_owner"},
                                            {"type": "award_points", "points": 50}]},
    )  # fmt: skip
    journeys.set_enabled(uow, key="after-mug", enabled=True)
    buyer = enrol(uow, 1, consents={})
    other = enrol(uow, 2, consents={})
    returned = enrol(uow, 3, consents={})
    mug = [{"sku": "MUG-1", "quantity": 1, "unit_price": "350.00"}]
    f.post_order(uow, member_id=buyer, lines=mug, ordered_at=DAY0.isoformat())
    f.post_order(uow, member_id=other, ordered_at=DAY0.isoformat())  # SKU-1 only
    # bought and brought back before the pass read it: no mug to follow up
    back = f.post_order(uow, member_id=returned, lines=mug, ordered_at=DAY0.isoformat()).id
    refunds.refund(uow, order_id=back, actor="t", req=refunds.RefundRequest(idempotency_key="b"))
    # the mug's line brought back, the rest kept: no mug either; two mugs, one back: one kept
    kept_rest, kept_one = enrol(uow, 4, consents={}), enrol(uow, 5, consents={})
    rest = f.post_order(uow, member_id=kept_rest, ordered_at=DAY0.isoformat(),
                        lines=[*mug, {"sku": "SKU-1", "quantity": 1, "unit_price": "99"}]).id  # fmt: skip
    two = f.post_order(uow, member_id=kept_one, ordered_at=DAY0.isoformat(),
                       lines=[{**mug[0], "quantity": 2}]).id  # fmt: skip
    for order, key in ((rest, "r"), (two, "t")):
        refunds.refund(uow, order_id=order, actor="t", req=refunds.RefundRequest(
            idempotency_key=key, lines=[{"line_no": 1, "quantity": 1}]))  # fmt: skip
    rec = Recorder()
    first = jobs(uow, settings, rec)
    assert first.entered["after-mug"] == 2
    jobs(uow, settings, rec)
    with uow.read() as s:
        tagged = s.execute(select(MemberTag.member_id, MemberTag.tag)).all()
    assert sorted(tuple(t) for t in tagged) == [(buyer, "mug_owner"), (kept_one, "mug_owner")]
    from omo.points import service as points

    assert points.summary(uow, member_id=buyer).available >= 50
    assert points.summary(uow, member_id=other).available < 50
    # the same member buying it again is a new occurrence (a new order), the tag stays single
    at(DAY0 + timedelta(days=1))
    f.post_order(uow, member_id=buyer, lines=mug, ordered_at=(DAY0 + timedelta(days=1)).isoformat())
    assert jobs(uow, settings, rec).entered["after-mug"] == 1
    assert count(uow, MemberTag) == 2


def test_an_order_over_a_spend_issues_a_coupon_for_next_time(
    uow: UnitOfWork, settings: Settings
) -> None:
    """單筆滿3000送100元券 in stores: an order of 3,000 at a till enters the member and issues the
    coupon; 2,999 at a till, or 3,500 on the web shop, do not. A journey with a spend of 0 or a
    channel it does not know is refused."""
    from omo.coupons import service as coupons

    at(DAY0)
    playbook.seed(uow)  # the coupon templates
    journeys.save(
        uow, key="spend-3000", actor="t",
        raw={"name": "滿3000送券", "trigger": {"kind": "order_spend", "min_total": "3000",
                                                "channels": ["pos"]},
             "control_share": 0, "steps": [{"type": "issue_coupon", "template": "FIRST100"}]},
    )  # fmt: skip
    journeys.set_enabled(uow, key="spend-3000", enabled=True)
    buyer, short, online = (enrol(uow, n, consents={}) for n in (1, 2, 3))
    f.store(uow, "TPE-101")
    till = {"channel": "pos", "store": "TPE-101", "ordered_at": DAY0.isoformat()}
    f.post_order(uow, member_id=buyer, lines=[{"sku": "A", "quantity": 2, "unit_price": "1500"}],
                 **till)  # fmt: skip
    f.post_order(uow, member_id=short, lines=[{"sku": "A", "quantity": 1, "unit_price": "2999"}],
                 **till)  # fmt: skip
    f.post_order(uow, member_id=online, ordered_at=DAY0.isoformat(),
                 lines=[{"sku": "A", "quantity": 1, "unit_price": "3500"}])  # fmt: skip
    rec = Recorder()
    assert jobs(uow, settings, rec).entered["spend-3000"] == 1
    jobs(uow, settings, rec)
    held = {m: [c.template for c in coupons.member_coupons(uow, member_id=m)]
            for m in (buyer, short, online)}  # fmt: skip
    assert held == {buyer: ["FIRST100"], short: [], online: []}
    for trigger, where in (({"kind": "order_spend", "min_total": "0"}, "min_total"),
                           ({"kind": "order_spend", "min_total": "10", "channels": ["fax"]},
                            "channels")):  # fmt: skip
        with pytest.raises(ValidationFailed) as bad:
            journeys.save(uow, key="bad", actor="t", raw={
                "name": "x", "trigger": trigger, "steps": [{"type": "add_tag", "tag": "x"}]})  # fmt: skip
        assert where in str(bad.value.field) + bad.value.message


def test_a_return_below_the_spend_withdraws_the_coupons_it_gave(
    uow: UnitOfWork, settings: Settings
) -> None:
    """滿3000送100元券 and returns. Orders of 3,000 or more at a till enter their members into a
    journey that issues the coupon at once and one that issues it a day later. Two units of
    1,500 with one returned keep 1,500: the refund's quote says one coupon withdrawn and
    changes nothing, the refund voids it, its retry says the same, and the entry still waiting
    exits and never issues. Three units with one returned keep 3,000: nothing is withdrawn and
    the second coupon comes. A coupon used meanwhile stays used. An order returned in full
    before the journeys' pass read it enters no one. A member merged into another after the
    coupon came: the return still finds the coupon, now the survivor's, and voids it."""
    from omo.checkout import refunds
    from omo.checkout.refunds import RefundLine, RefundRequest
    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate
    from omo.coupons.schemas import BasketIn
    from omo.identity import service as identity

    at(DAY0)
    f.store(uow, "TPE-101")
    coupons.put_template(uow, code="NEXT100", template=CouponTemplate(
        name="滿額贈券 折100", kind="amount_off", amount=Decimal(100), per_member_limit=10))  # fmt: skip
    spend = {"kind": "order_spend", "min_total": "3000", "channels": ["pos"]}
    for key, steps in (("spend-now", [{"type": "issue_coupon", "template": "NEXT100"}]),
                       ("spend-later", [{"type": "wait", "days": 1},
                                        {"type": "issue_coupon", "template": "NEXT100"}])):  # fmt: skip
        journeys.save(uow, key=key, actor="t", raw={
            "name": key, "trigger": spend, "control_share": 0, "steps": steps})  # fmt: skip
        journeys.set_enabled(uow, key=key, enabled=True)
    short, kept, used, early, absorbed, survivor = (
        enrol(uow, n, consents={}) for n in (1, 2, 3, 4, 5, 6)
    )
    till = {"channel": "pos", "store": "TPE-101", "ordered_at": DAY0.isoformat()}
    order = {m: f.post_order(uow, member_id=m, **till, lines=[
        {"sku": "A", "quantity": 3 if m == kept else 2, "unit_price": "1500"}]).id
        for m in (short, kept, used, early, absorbed)}  # fmt: skip
    whole = refunds.refund(uow, order_id=order[early], actor="t",
                           req=RefundRequest(idempotency_key="early"))  # fmt: skip
    assert whole.journey_coupons_withdrawn == 0
    rec = Recorder()
    assert jobs(uow, settings, rec).entered == {"spend-now": 4, "spend-later": 4}
    jobs(uow, settings, rec)

    def held(m: int) -> list[tuple[str, int]]:
        return [(c.status, c.uses) for c in coupons.member_coupons(uow, member_id=m)]

    assert [held(m) for m in (short, kept, used, early)] == [[("active", 0)]] * 3 + [[]]
    identity.merge_use_case(uow, survivor_id=survivor, absorbed_id=absorbed, note=None,
                            actor="t")  # fmt: skip
    assert held(survivor) == [("active", 0)]
    code = coupons.member_coupons(uow, member_id=used)[0].code
    coupons.redeem(uow, code=code, member_id=used, key="use", basket=BasketIn.model_validate(
        {"channel": "pos", "lines": [{"sku": "B", "quantity": 1, "unit_price": "300"}]}))  # fmt: skip
    one = [RefundLine(line_no=1, quantity=1)]
    weighed = refunds.quote(uow, order_id=order[short], req=refunds.RefundLines(lines=one))
    assert weighed.journey_coupons_withdrawn == 1 and held(short) == [("active", 0)]
    back = {m: refunds.refund(uow, order_id=order[m], actor="t",
                              req=RefundRequest(idempotency_key=f"r{m}", lines=one))
            for m in (short, kept, used, absorbed)}  # fmt: skip
    assert {m: r.journey_coupons_withdrawn for m, r in back.items()} == {
        short: 1, kept: 0, used: 0, absorbed: 1}  # fmt: skip
    assert (back[used].amount, back[used].journey_coupons_charged) == (1500, 0)
    again = refunds.refund(uow, order_id=order[short], actor="t",
                           req=RefundRequest(idempotency_key=f"r{short}", lines=one))  # fmt: skip
    assert again.replayed and again.journey_coupons_withdrawn == 1
    at(DAY0 + timedelta(days=2))
    jobs(uow, settings, rec)
    assert held(short) == [("void", 0)]
    assert held(kept) == [("active", 0), ("active", 0)]
    assert held(used) == [("active", 1)]
    assert held(survivor) == [("void", 0)]
    states = set(_entries(uow))
    assert {(short, "exited"), (used, "exited"), (kept, "done")} <= states
    assert not {m for m, _ in states} & {early}


def test_a_return_below_the_spend_takes_back_the_points_it_gave(
    uow: UnitOfWork, settings: Settings
) -> None:
    """滿3000送200點 by a journey, and returns. Two units of 1,500 with one returned keep 1,500:
    the quote says 200 points go and changes nothing, the refund takes them back, a retry says
    the same. A member who spent the 200 first: the refund takes what they hold (the kept
    unit's 15 points, pending) and writes off 185, the balance never below zero. Three units with one
    returned keep 3,000: the points stay. A member merged into another after the points came:
    the points, now the survivor's, are taken back from the survivor. The books hold."""
    from omo.checkout import refunds
    from omo.checkout.refunds import RefundLine, RefundRequest
    from omo.identity import service as identity
    from omo.points import ledger
    from omo.points import service as points
    from omo.points.schemas import PointsChange

    at(DAY0)
    f.store(uow, "TPE-101")
    journeys.save(uow, key="spend-points", actor="t", raw={
        "name": "滿3000送200點", "control_share": 0,
        "trigger": {"kind": "order_spend", "min_total": "3000", "channels": ["pos"]},
        "steps": [{"type": "award_points", "points": 200, "reason": "滿額贈點"}]})  # fmt: skip
    journeys.set_enabled(uow, key="spend-points", enabled=True)
    short, spender, kept, absorbed, survivor = (enrol(uow, n, consents={}) for n in range(1, 6))
    till = {"channel": "pos", "store": "TPE-101", "ordered_at": DAY0.isoformat()}
    order = {m: f.post_order(uow, member_id=m, **till, lines=[
        {"sku": "A", "quantity": 3 if m == kept else 2, "unit_price": "1500"}]).id
        for m in (short, spender, kept, absorbed)}  # fmt: skip
    rec = Recorder()
    jobs(uow, settings, rec)
    jobs(uow, settings, rec)

    def available(m: int) -> int:
        return points.summary(uow, member_id=m).available

    assert [available(m) for m in (short, spender, kept, absorbed)] == [200] * 4
    identity.merge_use_case(uow, survivor_id=survivor, absorbed_id=absorbed, note=None,
                            actor="t")  # fmt: skip
    assert available(survivor) == 200
    points.redeem(uow, member_id=spender, actor="t", change=PointsChange(
        points=200, idempotency_key="spent", reason="咖啡"))  # fmt: skip
    one = [RefundLine(line_no=1, quantity=1)]
    with uow.read() as s:
        before = ledger.ledger_sum(s, member_id=short)
    weighed = refunds.quote(uow, order_id=order[short], req=refunds.RefundLines(lines=one))
    assert (weighed.journey_points_taken_back, weighed.journey_points_short) == (200, 0)
    assert available(short) == 200
    back = {m: refunds.refund(uow, order_id=order[m], actor="t",
                              req=RefundRequest(idempotency_key=f"r{m}", lines=one))
            for m in (short, spender, kept, absorbed)}  # fmt: skip
    got = {m: (r.journey_points_taken_back, r.journey_points_short) for m, r in back.items()}
    assert got[short] == got[absorbed] == (200, 0) and got[kept] == (0, 0)
    assert got[spender] == (15, 185)  # the kept unit's 15 points, pending: all it holds
    assert available(short) == available(survivor) == 0 and available(kept) == 200
    with uow.read() as s:
        assert ledger.ledger_sum(s, member_id=short) == before - 200 - back[short].points_taken_back
        assert ledger.ledger_sum(s, member_id=spender) == 0
        assert points.check_ledger(s) == []
    again = refunds.refund(uow, order_id=order[short], actor="t",
                           req=RefundRequest(idempotency_key=f"r{short}", lines=one))  # fmt: skip
    assert again.replayed and again.journey_points_taken_back == 200


def test_a_used_spend_coupon_is_kept_back_under_the_policy(
    uow: UnitOfWork, settings: Settings
) -> None:
    """The returns policy's journey_coupons_used: charge. The member used the NT$100 coupon a
    3,000 order gave, then returns one of its two units: 1,400 back and 100 kept back (the
    quote says so first, a retry the same); the rest of the order then gives back 1,500, not
    1,600 — the coupon is charged once — and the books hold."""
    from omo.checkout import receipts, refunds
    from omo.checkout.refunds import RefundLine, RefundRequest
    from omo.commerce import returns_policy
    from omo.commerce import service as commerce
    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate
    from omo.coupons.schemas import BasketIn

    at(DAY0)
    f.store(uow, "TPE-101")
    coupons.put_template(uow, code="NEXT100", template=CouponTemplate(
        name="滿額贈券 折100", kind="amount_off", amount=Decimal(100)))  # fmt: skip
    journeys.save(uow, key="spend", actor="t", raw={
        "name": "滿3000送券", "control_share": 0,
        "trigger": {"kind": "order_spend", "min_total": "3000"},
        "steps": [{"type": "issue_coupon", "template": "NEXT100"}]})  # fmt: skip
    journeys.set_enabled(uow, key="spend", enabled=True)
    returns_policy.set_policy(uow, policy=returns_policy.Policy(journey_coupons_used="charge"),
                              actor="t")  # fmt: skip
    mid = enrol(uow, 1, consents={})
    order = f.post_order(uow, member_id=mid, channel="pos", store="TPE-101",
                         ordered_at=DAY0.isoformat(),
                         lines=[{"sku": "A", "quantity": 2, "unit_price": "1500"}]).id  # fmt: skip
    rec = Recorder()
    jobs(uow, settings, rec)
    jobs(uow, settings, rec)
    code = coupons.member_coupons(uow, member_id=mid)[0].code
    coupons.redeem(uow, code=code, member_id=mid, key="use", basket=BasketIn.model_validate(
        {"channel": "pos", "lines": [{"sku": "B", "quantity": 1, "unit_price": "300"}]}))  # fmt: skip
    one = [RefundLine(line_no=1, quantity=1)]
    weighed = refunds.quote(uow, order_id=order, req=refunds.RefundLines(lines=one))
    assert (weighed.amount, weighed.journey_coupons_charged) == (1400, 100)
    first = refunds.refund(uow, order_id=order, actor="t",
                           req=RefundRequest(idempotency_key="r1", lines=one))  # fmt: skip
    assert (first.amount, first.journey_coupons_charged, first.journey_coupons_withdrawn) == (
        1400, 100, 0)  # fmt: skip
    again = refunds.refund(uow, order_id=order, actor="t",
                           req=RefundRequest(idempotency_key="r1", lines=one))  # fmt: skip
    assert again.replayed and (again.amount, again.journey_coupons_charged) == (1400, 100)
    assert receipts.get_order(uow, order_id=order).refundable == 1500
    rest = refunds.refund(uow, order_id=order, actor="t", req=RefundRequest(idempotency_key="r2"))
    assert (rest.amount, rest.journey_coupons_charged) == (1500, 0)
    shown = receipts.get_order(uow, order_id=order)
    assert (shown.refunded_total, shown.refundable, shown.status) == (2900, 0, "refunded")
    assert [r.journey_coupons_charged for r in shown.refunds] == [100, 0]
    with uow.read() as s:
        assert commerce.check_orders_and_stats(s) == []


def _entries(uow: UnitOfWork) -> list[tuple[int, str]]:
    with uow.read() as s:
        return [(e.member_id, e.state) for e in s.scalars(select(JourneyEntry))]


def test_a_failing_step_sets_the_entry_aside_and_the_rest_go_on(
    uow: UnitOfWork, settings: Settings
) -> None:
    from omo.coupons import service as coupons
    from omo.coupons.rules import CouponTemplate

    at(DAY0)
    welcome(uow)  # issues FIRST100, then e-mails
    journeys.save(
        uow, key="tagger", actor="t",
        raw={"name": "t", "trigger": {"kind": "joined"}, "control_share": 0,
             "steps": [{"type": "add_tag", "tag": "new"}]},
    )  # fmt: skip
    journeys.set_enabled(uow, key="tagger", enabled=True)
    # the merchant turns FIRST100 into one public code: issuing per member now refuses
    shared = {**playbook.COUPONS["FIRST100"], "shared_code": True}
    coupons.put_template(uow, code="FIRST100", template=CouponTemplate.model_validate(shared))
    member = enrol(uow, 1, consents={"email": True})
    rec = Recorder()
    jobs(uow, settings, rec)
    jobs(uow, settings, rec)  # the failed entry is not tried again
    with uow.read() as s:
        states = {
            (e.journey_id, e.state, e.context.get("error", "")[:16])
            for e in s.scalars(select(JourneyEntry))
        }
        tags = list(s.scalars(select(MemberTag.tag).where(MemberTag.member_id == member)))
    assert {st for _, st, _ in states} == {"failed", "done"}
    assert any(err.startswith("ValidationFailed") for _, _, err in states)
    assert tags == ["new"] and rec.sent == [] and count(uow, Message) == 0


def test_tier_birthday_coupon_and_progress_in_the_message(
    uow: UnitOfWork, settings: Settings
) -> None:
    from omo.tiers import service as tiers
    from omo.tiers.policy import DEFAULT_PROGRAMME, Benefits

    at(DAY0)
    playbook.seed(uow)
    levels = [
        level.model_copy(update={"benefits": Benefits(birthday_coupon="BIRTHDAY200")})
        if level.code == "silver" else level
        for level in DEFAULT_PROGRAMME.levels
    ]  # fmt: skip
    tiers.set_programme(
        uow, programme=DEFAULT_PROGRAMME.model_copy(update={"levels": levels}), actor="t"
    )
    journeys.save(
        uow, key="tier-gift", actor="t",
        raw={"name": "tier gift", "trigger": {"kind": "joined"}, "control_share": 0,
             "steps": [{"type": "issue_coupon", "tier_benefit": "birthday_coupon"},
                       {"type": "send", "channel": "email", "template": "upgrade_challenge"}]},
    )  # fmt: skip
    journeys.set_enabled(uow, key="tier-gift", enabled=True)
    silver = enrol(uow, 1, consents={"email": True})
    enrol(uow, 2, consents={"email": True})
    f.post_order(
        uow, member_id=silver, ordered_at=DAY0.isoformat(),
        lines=[{"sku": "S", "quantity": 1, "unit_price": "12000.00"}],
    )  # fmt: skip
    rec = Recorder()
    jobs(uow, settings, rec)
    by_address = {m.address: m.body for m in rec.sent}
    silver_mail, base_mail = by_address["m1@example.com"], by_address["m2@example.com"]
    assert "銀卡" in silver_mail and "加碼券" in silver_mail  # the level's coupon in the text
    assert "再累積 NT$18,000 即可升等金卡" in silver_mail
    assert "再累積 NT$10,000 即可升等銀卡" in base_mail and "加碼券" not in base_mail
    with uow.read() as s:
        outcomes = sorted(str(o) for o in s.scalars(select(JourneyStep.outcome)))
    assert "skipped: no birthday_coupon at member" in outcomes
    assert sum(o.startswith("issued:") for o in outcomes) == 1


def test_members_are_told_before_their_points_expire(uow: UnitOfWork, settings: Settings) -> None:
    """The playbook's reminder: a member with 50 or more spendable points expiring within 30
    days is messaged once for that expiry day, with how many and when; fewer points, points
    further off, pending points or points already spent bring no message; the next expiry day
    brings the next reminder."""
    from sqlalchemy import update

    from omo.points import service as points
    from omo.points.models import PointsEntry
    from omo.points.schemas import PointsChange

    at(DAY0)
    playbook.seed(uow)
    journeys.set_enabled(uow, key="points_expiring", enabled=True)
    line_and_mail = {"email": True, "line": True}
    people = {n: enrol(uow, n, consents=line_and_mail) for n in range(1, 6)}

    def lot(member: int, key: str, pts: int, expires_in: int, pending: bool = False) -> None:
        points.adjust(uow, member_id=member, actor="t",
                      change=PointsChange(points=pts, idempotency_key=key, reason="t"))  # fmt: skip
        with uow.write() as s:
            s.execute(update(PointsEntry).where(PointsEntry.idempotency_key == f"adjust:{key}")
                      .values(expires_at=DAY0 + timedelta(days=expires_in),
                              available_at=DAY0 + timedelta(days=3) if pending else DAY0))  # fmt: skip

    lot(people[1], "a", 80, 20)  # told
    lot(people[1], "a2", 40, 50)  # its later lot: the next reminder
    lot(people[2], "b", 30, 20)  # too few
    lot(people[3], "c", 80, 45)  # too far off
    lot(people[4], "d", 80, 20, pending=True)  # not spendable yet
    lot(people[5], "e", 80, 20)
    points.redeem(uow, member_id=people[5], actor="t",
                  change=PointsChange(points=60, idempotency_key="spent"))  # fmt: skip
    rec = Recorder()
    first = jobs(uow, settings, rec)
    assert first.entered["points_expiring"] == 1
    [told] = rec.sent  # by e-mail (none of them has a LINE binding)
    assert told.address == "m1@example.com"
    body = told.body
    assert "您有 80 點將於" in body and "目前可用 120 點" in body, body
    assert jobs(uow, settings, rec).entered["points_expiring"] == 0  # once per expiry day
    at(DAY0 + timedelta(days=21))  # the first lot has expired; the second is 29 days off
    points.expire_due(uow)
    rec2 = Recorder()
    later = jobs(uow, settings, rec2)
    # member 3's lot is 24 days off now; member 1's 40 left are under the 50
    assert later.entered["points_expiring"] == 1
    assert [m.address for m in rec2.sent] == ["m3@example.com"]
    at(DAY0 + timedelta(days=22))
    lot(people[1], "a3", 20, 40)  # 40 + 20 within 30 days of day 22: told again
    assert jobs(uow, settings, rec2).entered["points_expiring"] == 1
    again = rec2.sent[-1]  # the soonest of them, and all there is to spend
    assert again.address == "m1@example.com"
    assert "您有 20 點將於 2026-04-11 到期" in again.body and "目前可用 60 點" in again.body
