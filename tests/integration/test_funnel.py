"""GET /api/v1/analytics/funnel on a small world counted by hand (SQLite and PostgreSQL):
distinct identified members per stage and channel, cart abandonment, buy online pick up in
store, store customers ordering online."""

from __future__ import annotations

from itertools import count
from typing import Any

from omo.db import UnitOfWork
from omo.events.schemas import EventIn
from omo.ingest import service as ingest
from tests.factories import ADMIN, enrol, post_order, store

FROM, TO = "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"
_ids = count(1)


def at(day: str, hour: int = 2) -> str:
    return f"{day}T{hour:02d}:00:00+00:00"


def event(uow: UnitOfWork, kind: str, channel: str, when: str, **kw: Any) -> None:
    if kind in ("view", "add_to_cart"):
        kw.setdefault("sku", "SKU-1")
    data = {"event_id": f"e-{next(_ids)}", "kind": kind, "channel": channel, "occurred_at": when}
    ingest.record_events(uow, batch=[EventIn.model_validate({**data, **kw})], principal=ADMIN,
                         region="TW")  # fmt: skip


def test_funnel_of_a_month_counted_by_hand(api: Any, uow: UnitOfWork) -> None:
    store(uow)
    m1, m2, m3, m4 = (enrol(uow, phone=f"0911-000-00{n}").member.id for n in range(1, 5))
    pos = {"channel": "pos", "store": "TPE-101"}
    # M1: ad → view → cart → web order picked up in store; an app view; a store order later
    event(uow, "ad_click", "web", at("2026-06-02", 1), member_id=m1, utm_source="fb")
    event(uow, "view", "web", at("2026-06-02", 1), member_id=m1)
    event(uow, "add_to_cart", "web", at("2026-06-02", 2), member_id=m1)
    post_order(uow, member_id=m1, ordered_at=at("2026-06-02", 3), fulfilment="store_pickup",
               store="TPE-101")  # fmt: skip
    event(uow, "view", "app", at("2026-06-03"), member_id=m1)
    post_order(uow, member_id=m1, ordered_at=at("2026-06-20"), **pos)
    # M2: a store customer since March; a web cart left (the order after it was cancelled);
    # an app order delivered
    post_order(uow, member_id=m2, ordered_at=at("2026-03-01"), **pos)
    event(uow, "view", "web", at("2026-06-05"), member_id=m2)
    event(uow, "add_to_cart", "web", at("2026-06-05"), member_id=m2)
    post_order(uow, member_id=m2, ordered_at=at("2026-06-06"), status="cancelled")
    post_order(uow, member_id=m2, ordered_at=at("2026-06-10"), channel="app")
    # M3: a store customer since January; a web order, then a cart left after it
    post_order(uow, member_id=m3, ordered_at=at("2026-01-10"), **pos)
    post_order(uow, member_id=m3, ordered_at=at("2026-06-20"))
    event(uow, "add_to_cart", "web", at("2026-06-25"), member_id=m3)
    # M4: a store customer who stays in store
    post_order(uow, member_id=m4, ordered_at=at("2025-12-01"), **pos)
    event(uow, "feedback", "pos", at("2026-06-15"), member_id=m4, survey="nps", score=9)
    post_order(uow, member_id=m4, ordered_at=at("2026-06-15"), **pos)
    # not counted: a guest's order, an anonymous view, a view after the period
    post_order(uow, ordered_at=at("2026-06-12"))
    event(uow, "view", "web", at("2026-06-12"), identifiers=[{"kind": "email", "value": "x@y.tw"}])
    event(uow, "view", "web", at("2026-07-02"), member_id=m4)

    got = api.get("/api/v1/analytics/funnel", params={"from": FROM, "to": TO})
    assert got.status_code == 200, got.text
    f = got.json()
    stages = ("reached", "viewed", "carted", "ordered", "picked_up", "repurchased", "carts",
              "abandoned")  # fmt: skip
    rows = {c["channel"]: tuple(c[s] for s in stages) for c in f["channels"]}
    assert rows == {
        "web": (3, 2, 3, 2, 1, 1, 3, 2),
        "app": (2, 1, 0, 1, 0, 0, 0, 0),
        "pos": (2, 0, 0, 2, 0, 1, 0, 0),
        "all": (4, 2, 3, 4, 1, 1, 3, 2),
    }
    assert [c["channel"] for c in f["channels"]] == ["app", "pos", "web", "all"]
    web = next(c for c in f["channels"] if c["channel"] == "web")
    assert web["cart_abandonment_rate"] == 0.6667
    assert (f["online_orders"], f["pickup_orders"], f["pickup_share"]) == (3, 1, 0.3333)
    assert (f["store_customers"], f["store_customers_online"], f["store_to_online_rate"]) == (
        3, 2, 0.6667,
    )  # fmt: skip


def test_funnel_refuses_a_backwards_period_and_is_empty_on_an_empty_store(api: Any) -> None:
    bad = api.get("/api/v1/analytics/funnel", params={"from": TO, "to": FROM})
    assert bad.status_code == 422 and "from must be before to" in bad.text
    empty = api.get("/api/v1/analytics/funnel")
    assert empty.status_code == 200
    assert empty.json()["channels"] == [
        {"channel": "all", "reached": 0, "viewed": 0, "carted": 0, "ordered": 0, "picked_up": 0,
         "repurchased": 0, "carts": 0, "abandoned": 0, "cart_abandonment_rate": 0.0}
    ]  # fmt: skip
