"""The till's lane (checkout/lane.py) answers a sale and a quote as the FastAPI routes do
(SQLite + PostgreSQL): the same requests go to an app with the lane and to one without it, each on a
database of its own made the same way, and every answer must be the same bytes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from omo.apikeys.service import create_key
from omo.app import create_app
from omo.checkout.lane import TillLane
from omo.commerce import service as commerce
from omo.commerce.schemas import ProductUpsert
from omo.coupons import service as coupons
from omo.coupons.rules import CouponTemplate
from omo.db import UnitOfWork, make_engine
from omo.points import service as points
from omo.points.schemas import PointsChange
from omo.settings import Settings
from omo.shared import clock
from tests.conftest import dump, fresh_database
from tests.factories import enrol, post_order, store

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
PHONE = "0912-345-678"


@pytest.fixture
def second_url(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Another empty database on the same backend as `db_url`."""
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    with fresh_database(request, tmp_path, backend, "second") as url:
        yield url


def _shop(url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The same shop on every database: a silver member with points, a coupon, keys."""
    numbers = itertools.count(1)
    monkeypatch.setattr(coupons, "new_code", lambda: f"LANE{next(numbers):04d}")
    engine = make_engine(Settings(database_url=url))
    uow = UnitOfWork(engine)
    store(uow, "TPE-101")
    for sku, cat, price in (("APP-1", "服飾", "800"), ("BEA-1", "美妝保養", "600")):
        commerce.save_product(
            uow, sku=sku, data=ProductUpsert(name=sku, category=cat, price=Decimal(price))
        )
    mid = enrol(uow, phone=PHONE).member.id
    post_order(uow, customer=[{"kind": "phone", "value": PHONE}], external_id="OLD",
               ordered_at="2026-01-15T10:00:00+00:00",
               lines=[{"sku": "OLD", "quantity": 1, "unit_price": "12000"}])  # fmt: skip
    points.adjust(uow, member_id=mid, actor="t",
                  change=PointsChange(points=500, idempotency_key="seed", reason="seed"))  # fmt: skip
    template = CouponTemplate(
        name="滿1000減100", kind="spend_get_off", spend=Decimal(1000), amount=Decimal(100)
    )
    coupons.put_template(uow, code="C100", template=template)
    code = coupons.issue(uow, template_code="C100", member_ids=[mid], key="k").issued[0].code
    keys = {
        "all": create_key(uow, name="all", store_code=None, scopes=None).key,
        "orders": create_key(uow, name="orders", store_code=None, scopes=["orders:write"]).key,
        "reader": create_key(uow, name="reader", store_code=None, scopes=["members:read"]).key,
    }
    engine.dispose()
    return {"member": str(mid), "code": code, **keys}


def _without_lane(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not TillLane]
    return app


def _lane_of(app: FastAPI) -> TillLane:
    layer: Any = app.middleware_stack
    while not isinstance(layer, TillLane):
        layer = layer.app
    return layer


def sale(external_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "channel": "pos", "store": "TPE-101", "external_id": external_id,
        "lines": [{"sku": "APP-1", "quantity": 1}, {"sku": "BEA-1", "quantity": 1}], **kw,
    }  # fmt: skip


def _send(c: TestClient, keys: dict[str, str], role: str | None, body: Any, **kw: Any) -> Any:
    headers: dict[str, str] = dict(kw.pop("headers", {}))
    path = "/api/v1/checkout/" + kw.pop("to", "commit")
    if role is not None:
        headers.setdefault("Authorization", f"Bearer {keys[role]}")
    if isinstance(body, bytes):
        headers.setdefault("Content-Type", "application/json")
        return c.post(path, content=body, headers=headers)
    return c.post(path, json=body, headers=headers)


def basket(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in sale("", **kw).items() if k != "external_id"}


def test_the_lane_answers_as_the_route_does(
    db_url: str, second_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.set_clock(lambda: T0)
    shops = [_shop(db_url, monkeypatch), _shop(second_url, monkeypatch)]
    m, code = int(shops[0]["member"]), shops[0]["code"]
    assert (shops[1]["member"], shops[1]["code"]) == (str(m), code)
    limits: dict[str, Any] = {
        "rate_limit_per_s": 0.001, "rate_limit_burst": 50, "secret_key": "quotes sealed alike by the one key"
    }  # fmt: skip
    apps = [
        create_app(Settings(database_url=db_url, **limits)),
        _without_lane(create_app(Settings(database_url=second_url, **limits))),
    ]
    phone = [{"kind": "phone", "value": PHONE}]
    requests: list[tuple[str | None, Any, dict[str, Any]]] = [
        ("all", sale("S-1", member_id=m), {}),  # the key read from the database: the route
        ("all", sale("S-2", member_id=m, points=100, coupon_codes=[code]), {}),
        ("all", sale("S-2", member_id=m, points=100, coupon_codes=[code]), {}),  # a retry
        ("all", sale("S-3", customer=phone), {}),
        ("all", sale("S-4", customer=[{"kind": "phone", "value": "0987-654-321"}]), {}),
        ("all", sale("S-5", member_id=m, points=100_000), {}),  # over the cap: ctx
        ("all", sale("S-6", member_id=m, coupon_codes=["NOPE"]), {}),
        ("all", sale("S-7", lines=[{"sku": "NOPE", "quantity": 1}]), {}),
        ("all", sale("S-2", member_id=m, lines=[{"sku": "BEA-1", "quantity": 1}]), {}),  # 409
        ("all", sale("S-8", member_id=m, currency="JPY"), {}),  # not a field
        ("all", {"channel": "pos"}, {}),
        ("all", b"{not json", {}),
        ("all", b"", {}),
        ("all", b"[" * 5000 + b"]" * 5000, {}),  # past the JSON parser's depth: FastAPI's 400
        ("all", sale("S-9").__repr__().encode(), {}),
        (
            "all",
            b'{"channel": "pos", "external_id": "S-10", "lines": '
            b'[{"sku": "APP-1", "quantity": 1}]}',
            {"headers": {"Content-Type": "text/plain"}},
        ),
        (
            "all",
            sale("S-11", member_id=m),
            {"headers": {"Content-Type": "application/json; charset=utf-8"}},
        ),
        ("orders", sale("S-12", member_id=m), {}),  # its first call: the route
        ("orders", sale("S-13", member_id=m), {}),
        ("orders", sale("S-14", member_id=m, points=10), {}),  # no points:write
        ("reader", sale("S-15", member_id=m), {}),
        ("reader", sale("S-16", member_id=m), {}),
        (None, sale("S-17", member_id=m), {}),
        (None, sale("S-18", member_id=m), {"headers": {"Authorization": "Bearer omo_x_y"}}),
        (None, sale("S-19", member_id=m), {"headers": {"Authorization": "Basic eDp5"}}),
        ("all", sale("S-20", member_id=m), {"headers": {"Authorization": "bearer  x"}}),
        ("all", basket(member_id=m, points=100, coupon_codes=[code]), {"to": "quote"}),
        ("all", basket(member_id=m, coupon_codes=["NOPE"]), {"to": "quote"}),
        ("all", basket(customer=phone), {"to": "quote"}),
        ("all", basket(store="NOPE"), {"to": "quote"}),
        ("all", basket(points=-1), {"to": "quote"}),
        ("all", sale("S-22", member_id=m), {"to": "quote"}),  # a sale is not a basket
        ("reader", basket(member_id=m), {"to": "quote"}),
        ("orders", basket(member_id=m), {"to": "quote"}),  # no members:read
    ]
    with TestClient(apps[0]) as lane_client, TestClient(apps[1]) as route_client:
        for i, (role, body, kw) in enumerate(requests):
            answers = [
                _send(c, keys, role, body, **kw)
                for c, keys in ((lane_client, shops[0]), (route_client, shops[1]))
            ]
            a, b = answers
            assert (a.status_code, a.headers["content-type"], a.content) == (
                b.status_code, b.headers["content-type"], b.content), (i, a.text, b.text)  # fmt: skip
        for c, keys in ((lane_client, shops[0]), (route_client, shops[1])):  # X-API-Key too
            headers = {"X-API-Key": keys["all"]}
            assert (
                _send(c, keys, None, sale("S-21", member_id=m), headers=headers).status_code == 201
            )
        statuses: list[list[int]] = [[], []]
        for n in range(30):  # over the key's rate at the same request on both
            for j, (c, keys) in enumerate(((lane_client, shops[0]), (route_client, shops[1]))):
                body = sale(f"R-{n}", member_id=m) if n % 3 else {"channel": "pos"}
                statuses[j].append(_send(c, keys, "all", body).status_code)
        assert statuses[0] == statuses[1] and 429 in statuses[0], statuses
        lane = _lane_of(apps[0])
        # not a comparison of the routes with themselves (a key's first call, and its first
        # after the 5 s the principal cache keeps it, go to the route: bounds with room)
        assert lane.answered["/api/v1/checkout/commit"] >= 10, lane.answered
        assert lane.answered["/api/v1/checkout/quote"] >= 2, lane.answered
        metrics = lane_client.get("/metrics").text
        assert 'omo_checkouts_total{outcome="ok"}' in metrics
        assert 'route="/api/v1/checkout/commit",status="201"' in metrics
    engines = [sa.create_engine(url) for url in (db_url, second_url)]
    try:
        states = [dump(e) for e in engines]
    finally:
        for e in engines:
            e.dispose()
    for state in states:
        state.pop("api_keys")
    assert states[0] == states[1]
    for app in apps:
        app.state.engine.dispose()
