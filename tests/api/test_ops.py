"""Operations endpoints (SQLite + PostgreSQL): readiness against the shipped schema, Prometheus
metrics with route patterns (never ids), checkout counts and queue gauges."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from omo.app import create_app
from omo.db import UnitOfWork
from omo.settings import Settings
from tests import factories as f
from tests.conftest import dump


def test_ready_only_on_the_schema_this_code_expects(client: TestClient, engine: sa.Engine) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    head = ready.json()["schema"]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    stale = client.get("/readyz")
    assert stale.status_code == 503 and stale.json() == {
        "status": "migrate", "database": "0001", "code": head,
    }  # fmt: skip
    assert client.get("/healthz").status_code == 200  # alive, just not ready
    assert client.get("/livez").json()["status"] == "alive"


def test_liveness_does_not_need_the_database() -> None:
    """A liveness probe that failed with the database would restart every replica at once."""
    nowhere = "postgresql+psycopg://omo@127.0.0.1:1/omo?connect_timeout=2"  # refused at once
    with TestClient(create_app(Settings(database_url=nowhere, jobs_every_s=0))) as client:
        assert client.get("/healthz").status_code == 503
        live = client.get("/livez")
    assert live.status_code == 200 and live.json()["status"] == "alive"


def test_metrics_count_requests_checkouts_and_queues(api: TestClient, uow: UnitOfWork) -> None:
    f.store(uow)
    hook = {"url": "http://127.0.0.1:9/omo", "topics": ["OrderRecorded"]}
    assert api.put("/api/v1/webhooks/erp", json=hook).status_code == 201
    member = f.enrol(uow, phone="0912-345-678").member.id
    assert api.get(f"/api/v1/members/{member}").status_code == 200
    body = {"channel": "pos", "store": "TPE-101", "member_id": member, "external_id": "T-1",
            "lines": [{"sku": "S", "quantity": 1, "unit_price": "100"}]}  # fmt: skip
    assert api.post("/api/v1/checkout/commit", json=body).status_code == 201
    assert api.post("/api/v1/checkout/commit", json={**body, "points": -1}).status_code == 422
    text = api.get("/metrics").text
    assert (
        'omo_request_seconds_count{method="GET",route="/api/v1/members/{member_id}",status="200"} 1.0'
        in text
    )
    assert f'/api/v1/members/{member}"' not in text  # patterns, not ids
    assert 'omo_checkouts_total{outcome="ok"} 1.0' in text
    assert 'omo_checkouts_total{outcome="422"} 1.0' in text
    assert 'omo_outbox_backlog{topic="OrderRecorded"}' in text  # nothing has read them yet
    assert 'omo_messages{state="dead"} 0.0' in text
    assert 'omo_webhook_waiting{webhook="erp"} 1.0' in text  # the sale, not the enrolment
    assert 'omo_webhook_failures{webhook="erp"} 0.0' in text
    assert 'omo_webhook_skipped{webhook="erp"} 0.0' in text
    assert 'omo_webhook_switched_off{webhook="erp"} 0.0' in text
    from sqlalchemy import update

    from omo.shared import clock
    from omo.webhooks.models import Webhook

    uow.run(lambda s: s.execute(update(Webhook).values(active=False, switched_off_at=clock.now())))
    assert 'omo_webhook_switched_off{webhook="erp"} 1.0' in api.get("/metrics").text


def test_oversized_bodies_are_refused_before_they_are_read(
    settings: object, uow: UnitOfWork
) -> None:
    from omo.apikeys.service import create_key
    from omo.app import create_app
    from omo.settings import Settings

    assert isinstance(settings, Settings)
    app = create_app(settings.model_copy(update={"max_body_bytes": 2048}))
    key = create_key(uow, name="big", store_code=None, scopes=None).key
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        big = c.post("/api/v1/events", content=b"[" + b" " * 4096 + b"]",
                     headers={"Content-Type": "application/json"})  # fmt: skip
        assert big.status_code == 413 and "2,048 bytes" in big.text

        def chunks():  # no Content-Length: counted as it streams
            for _ in range(10):
                yield b" " * 512

        streamed = c.post("/api/v1/events", content=chunks(),
                          headers={"Content-Type": "application/json"})  # fmt: skip
        assert streamed.status_code == 413
        assert c.post("/api/v1/events", json=[]).status_code != 413
    app.state.engine.dispose()


def test_each_key_has_a_request_budget(settings: object, uow: UnitOfWork) -> None:
    from omo.apikeys.service import create_key
    from omo.app import create_app
    from omo.ops.limits import RateLimiter
    from omo.settings import Settings

    assert isinstance(settings, Settings)
    app = create_app(settings.model_copy(update={"rate_limit_per_s": 0.5, "rate_limit_burst": 3}))
    busy = create_key(uow, name="busy", store_code=None, scopes=None).key
    calm = create_key(uow, name="calm", store_code=None, scopes=None).key
    with TestClient(app) as c:
        codes = [c.get("/api/v1/stores", headers={"Authorization": f"Bearer {busy}"}).status_code
                 for _ in range(5)]  # fmt: skip
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        limited = c.get("/api/v1/stores", headers={"Authorization": f"Bearer {busy}"})
        assert int(limited.headers["Retry-After"]) >= 1
        # another key is not slowed by the first
        assert (
            c.get("/api/v1/stores", headers={"Authorization": f"Bearer {calm}"}).status_code == 200
        )
    app.state.engine.dispose()
    bucket = RateLimiter(rate=2, burst=1)
    assert bucket.take("k", now=0.0) == 0 and bucket.take("k", now=0.1) > 0
    assert bucket.take("k", now=0.6) == 0  # refilled at 2 a second


def test_text_with_nul_is_refused_at_the_door(
    api: TestClient, uow: UnitOfWork, engine: sa.Engine
) -> None:
    """PostgreSQL's text cannot hold NUL: a name, a SKU, a receipt number or a search with one
    was a 500 there (a DataError at the first write or WHERE) and kept by SQLite. Refused
    before any route, on both, wherever it comes: path, query, JSON body or a form (a body
    in parts: tests/unit/test_nul.py)."""
    f.store(uow, "TPE-101")
    before = dump(engine)
    member = {"name": "陳\u0000美玲", "identifiers": [{"kind": "phone", "value": "0912-345-678"}]}
    sale = b'{"channel": "pos", "lines": [{"sku": "A\\u0000", "quantity": 1, "unit_price": "1"}]}'
    commit = sale[:-1] + b', "external_id": "N-1"}'
    json_headers = {"Content-Type": "application/json"}
    for r, part in (
        (api.post("/api/v1/members", json=member), "body"),
        (api.post("/api/v1/checkout/quote", content=sale, headers=json_headers), "body"),
        (api.post("/api/v1/checkout/commit", content=commit, headers=json_headers), "body"),
        (api.put("/api/v1/stores/TPE-102", json={"name": "x\u0000", "region": "y"}), "body"),
        (api.get("/api/v1/orders/lookup?channel=pos&external_id=N%00"), "query"),
        (api.get("/api/v1/products", params={"category": "生活\u0000"}), "query"),
        (api.get("/api/v1/rewards/A%00B"), "path"),
        (api.post("/ui/login", data={"username": "a\u0000", "password": "x", "csrf": "x"}), "body"),
    ):
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == [{
            "loc": [part], "msg": "text must not hold the NUL character (\\u0000)",
            "type": "nul_character"}]  # fmt: skip
    assert dump(engine) == before
    # a backslash and the text "u0000" is not NUL; nor is "%00" in JSON
    ok = api.post("/api/v1/members", json={**member, "name": "陳\\u0000美玲 %00"})
    assert ok.status_code == 201, ok.text
    assert api.get(f"/api/v1/members/{ok.json()['member']['id']}").json()["member"]["name"] == (
        "陳\\u0000美玲 %00"
    )


def test_a_server_on_a_database_not_at_its_schema_says_so_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every request failed and nothing said why until someone asked /readyz."""
    caplog.set_level(logging.WARNING, logger="omo.app")
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'new.sqlite'}", jobs_every_s=0))
    with TestClient(app) as client:
        ready = client.get("/readyz")  # never migrated: migrate, not "unavailable"
        assert ready.status_code == 503 and ready.json()["status"] == "migrate"
        assert ready.json()["database"] is None
        for _ in range(200):  # said from a thread, not to hold the start
            if caplog.records:
                break
            time.sleep(0.01)
    app.state.engine.dispose()
    (said,) = [r.getMessage() for r in caplog.records]
    assert "is at schema (none), this OMO needs" in said and "run `omo db upgrade`" in said


def test_a_server_on_its_schema_says_nothing_of_it(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="omo.app")
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        time.sleep(0.2)
    app.state.engine.dispose()
    assert [r.getMessage() for r in caplog.records if r.name == "omo.app"] == []
