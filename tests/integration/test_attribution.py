"""GET /api/v1/analytics/attribution on a small month counted by hand (SQLite and PostgreSQL):
first and last touch, the lookback window, online-to-store credit, unattributed sales."""

from __future__ import annotations

from itertools import count
from typing import Any

from omo.db import UnitOfWork
from omo.events.schemas import EventIn
from omo.ingest import service as ingest
from tests.factories import ADMIN, enrol, post_order, store

FROM, TO = "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"
_ids = count(1)


def at(day: str) -> str:
    return f"{day}T02:00:00+00:00"


def click(uow: UnitOfWork, member: int, day: str, channel: str, source: str, campaign: str) -> None:
    e = EventIn.model_validate({
        "event_id": f"c-{next(_ids)}", "kind": "ad_click", "channel": channel,
        "occurred_at": at(day), "member_id": member, "utm_source": source,
        "utm_campaign": campaign,
    })  # fmt: skip
    ingest.record_events(uow, batch=[e], principal=ADMIN, region="TW")


def lines(price: str) -> list[dict[str, Any]]:
    return [{"sku": "SKU-1", "quantity": 1, "unit_price": price}]


def test_first_and_last_touch_counted_by_hand(api: Any, uow: UnitOfWork) -> None:
    store(uow)
    a, b, c = (enrol(uow, phone=f"0911-000-00{n}").member.id for n in (1, 2, 3))
    click(uow, a, "2026-05-10", "web", "fb", "spring")
    click(uow, a, "2026-06-01", "app", "google", "june")
    click(uow, b, "2026-06-08", "web", "fb", "june")
    click(uow, b, "2026-06-12", "app", "google", "june")
    post_order(uow, member_id=a, ordered_at=at("2026-06-05"), lines=lines("1000"))
    post_order(uow, member_id=a, ordered_at=at("2026-06-20"), lines=lines("500"), channel="pos",
               store="TPE-101")  # 10 May is past 30 days: google/june, in a store  # fmt: skip
    post_order(uow, member_id=b, ordered_at=at("2026-06-10"), lines=lines("2000"),
               discount_total="200.00")  # fmt: skip
    post_order(uow, member_id=b, ordered_at=at("2026-06-15"), lines=lines("300"))  # fb first
    post_order(uow, member_id=c, ordered_at=at("2026-06-10"), lines=lines("1000"))  # no click
    post_order(uow, ordered_at=at("2026-06-11"), lines=lines("700"), channel="pos",
               store="TPE-101")  # a guest  # fmt: skip
    post_order(uow, member_id=b, ordered_at=at("2026-06-16"), lines=lines("900"),
               status="cancelled")  # fmt: skip

    got = api.get("/api/v1/analytics/attribution", params={"from": FROM, "to": TO})
    assert got.status_code == 200, got.text
    r = got.json()

    def credits(model: str) -> list[tuple[Any, ...]]:
        return [(c["source"], c["campaign"], c["channel"], c["orders"], c["revenue"],
                 c["discount"], c["store_orders"], c["store_revenue"]) for c in r[model]]  # fmt: skip

    assert credits("first_touch") == [
        ("fb", "june", "web", 2, "2100.00", "200.00", 0, "0.00"),
        ("fb", "spring", "web", 1, "1000.00", "0.00", 0, "0.00"),
        ("google", "june", "app", 1, "500.00", "0.00", 1, "500.00"),
    ]
    # A's order of 5 June had two clicks before it: fb/spring first, google/june last
    assert credits("last_touch") == [
        ("fb", "june", "web", 1, "1800.00", "200.00", 0, "0.00"),
        ("google", "june", "app", 3, "1800.00", "0.00", 1, "500.00"),
    ]
    assert [(c["channel"], c["orders"], c["revenue"], c["discount"], c["attributed_orders"])
            for c in r["channels"]] == [
        ("pos", 2, "1200.00", "0.00", 1),
        ("web", 4, "4100.00", "200.00", 3),
    ]  # fmt: skip
    assert (r["unattributed_orders"], r["unattributed_revenue"]) == (2, "1700.00")
    short = api.get("/api/v1/analytics/attribution",
                    params={"from": FROM, "to": TO, "lookback_days": 1}).json()  # fmt: skip
    assert short["first_touch"] == [] and short["unattributed_orders"] == 6


def test_bad_input_is_refused(api: Any) -> None:
    for params in ({"lookback_days": 0}, {"lookback_days": 366}, {"from": TO, "to": FROM}):
        got = api.get("/api/v1/analytics/attribution", params=params)
        assert got.status_code == 422, params
    empty = api.get("/api/v1/analytics/attribution").json()
    assert empty["first_touch"] == [] and empty["unattributed_orders"] == 0
