"""Members' recent behaviour through `omo refresh` (SQLite and PostgreSQL): views, carts and ad
clicks of the last 30 days and the last NPS answer, on the scores and in the rule language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from omo.analytics.refresh import RefreshOptions, refresh
from omo.db import UnitOfWork
from omo.events.schemas import EventIn
from omo.ingest import service as ingest
from tests.factories import ADMIN, enrol

AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
_ids = count(1)


def event(uow: UnitOfWork, member: int, kind: str, days_ago: float, **kw: Any) -> None:
    if kind in ("view", "add_to_cart"):
        kw["sku"] = "SKU-1"
    if kind == "ad_click":
        kw["utm_source"] = "fb"
    e = EventIn.model_validate({
        "event_id": f"b-{next(_ids)}", "kind": kind, "channel": "web", "member_id": member,
        "occurred_at": (AS_OF - timedelta(days=days_ago)).isoformat(), **kw,
    })  # fmt: skip
    ingest.record_events(uow, batch=[e], principal=ADMIN, region="TW")


def test_recent_behaviour_on_scores_and_in_rules(api: Any, uow: UnitOfWork) -> None:
    a, b, c = (enrol(uow, phone=f"0911-000-00{n}").member.id for n in (1, 2, 3))
    event(uow, a, "view", 1)
    event(uow, a, "view", 29.9)
    event(uow, a, "view", 40)  # older than 30 days: not counted
    event(uow, a, "add_to_cart", 2)
    event(uow, a, "ad_click", 3)
    event(uow, a, "feedback", 50, survey="nps", score=6)
    event(uow, a, "feedback", 10, survey="nps", score=9)  # the last answer
    event(uow, a, "feedback", 5, survey="csat", score=2)  # not an NPS answer
    event(uow, b, "feedback", 100, survey="nps", score=3)  # older than the 90 days read
    event(uow, b, "view", -1)  # after the refresh's date
    refresh(uow, RefreshOptions(as_of=AS_OF))

    def scores(member: int) -> tuple[Any, ...]:
        s = api.get(f"/api/v1/members/{member}/scores").json()
        return s["views_30d"], s["carts_30d"], s["ad_clicks_30d"], s["nps_last"]

    assert scores(a) == (2, 1, 1, 9)
    assert scores(b) == (0, 0, 0, None)
    assert scores(c) == (0, 0, 0, None)

    def count_of(rule: str) -> int:
        got = api.post("/api/v1/segments/count", json={"rule": rule})
        assert got.status_code == 200, got.text
        return int(got.json()["members"])

    assert count_of("carts_30d >= 1 and nps_last >= 9") == 1
    assert count_of("views_30d == 0") == 2
    assert count_of("nps_last <= 6") == 0  # no answer is not a low answer
