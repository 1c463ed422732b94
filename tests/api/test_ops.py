"""Operations endpoints (SQLite + PostgreSQL): readiness against the shipped schema, Prometheus
metrics with route patterns (never ids), checkout counts and queue gauges."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from omo.db import UnitOfWork
from tests import factories as f


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


def test_metrics_count_requests_checkouts_and_queues(api: TestClient, uow: UnitOfWork) -> None:
    f.store(uow)
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
