"""A database out of reach or too busy is a 503 with `Retry-After` in the API's error shape —
a till retries with the same body — not a 500, which says OMO itself failed (ops/unavailable.py;
SQLite + PostgreSQL)."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from omo.apikeys.service import create_key
from omo.app import create_app
from omo.checkout.lane import TillLane
from omo.db import UnitOfWork
from omo.ops.unavailable import database_unavailable
from omo.settings import Settings
from omo.testing.postgres import PostgresServer
from omo.users import service as users
from tests import factories as f
from tests.api.test_web import PASSWORD, sign_in
from tests.conftest import migrate, start_postgres

QUOTE = {"channel": "pos", "store": "TPE-101",
         "lines": [{"sku": "X-1", "quantity": 1, "unit_price": "100"}]}  # fmt: skip


def _sale(n: int) -> dict[str, Any]:
    return {**QUOTE, "external_id": f"R-{n}"}


def _lane_answered(app: Any) -> int:
    layer = app.middleware_stack
    while not isinstance(layer, TillLane):
        layer = layer.app
    return int(layer.answered["/api/v1/checkout/commit"])


def _is_503(answer: Any) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    (detail,) = answer.json()["detail"]
    assert detail["type"] == "database_unavailable" and detail["loc"] == []


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, to stop."""
    server = start_postgres()
    yield server
    with contextlib.suppress(Exception):  # stopped by the test already, unless it failed first
        server.stop()


@pytest.mark.postgres
def test_postgresql_down_is_a_503_on_the_api_the_till_lane_and_the_pages(
    own_pg: PostgresServer,
) -> None:
    """Was a 500 with a plain-text body ("Internal Server Error") for every call and page."""
    admin = sa.create_engine(own_pg.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE omo")
    admin.dispose()
    migrate(own_pg.url("omo"))
    app = create_app(Settings(database_url=own_pg.url("omo"), jobs_every_s=0))
    uow = UnitOfWork(app.state.engine)
    f.store(uow)
    key = create_key(uow, name="till", store_code=None, scopes=None).key
    users.create_user(uow, username="boss", password=PASSWORD, role="admin", store_code=None)
    with (
        TestClient(app, raise_server_exceptions=False) as client,
        TestClient(app, raise_server_exceptions=False) as staff,
    ):
        client.headers["Authorization"] = f"Bearer {key}"
        assert client.post("/api/v1/checkout/commit", json=_sale(1)).status_code == 201
        sign_in(staff, "boss")
        own_pg.stop()
        before = _lane_answered(app)
        _is_503(client.post("/api/v1/checkout/commit", json=_sale(2)))
        assert _lane_answered(app) == before + 1  # the till's lane answered it
        _is_503(client.post("/api/v1/checkout/quote", json=QUOTE))
        _is_503(client.get("/api/v1/members/1/points"))
        _is_503(client.put("/api/v1/stores/TPE-102", json={"name": "x", "region": "台北市"}))
        assert client.get("/healthz").status_code == 503
        page = staff.get("/ui/members", headers={"Accept-Language": "zh-TW"})
        assert page.status_code == 503 and page.headers["retry-after"] == "1"
        assert "text/html" in page.headers["content-type"]
        assert "資料庫暫時無法連線或忙碌中" in page.text
    app.state.engine.dispose()


def test_sqlite_held_past_its_busy_timeout_is_a_503_and_changes_nothing(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """Another process (a job, a backup, an import) holding SQLite's write lock longer than
    OMO_SQLITE_BUSY_TIMEOUT_S: was a 500."""
    path = tmp_path / "omo.sqlite"
    shutil.copy(sqlite_template, path)
    settings = Settings(database_url=f"sqlite:///{path}", sqlite_busy_timeout_s=0.05,
                        jobs_every_s=0)  # fmt: skip
    app = create_app(settings)
    uow = UnitOfWork(app.state.engine)
    f.store(uow)
    key = create_key(uow, name="till", store_code=None, scopes=None).key
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        assert client.post("/api/v1/checkout/commit", json=_sale(1)).status_code == 201
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's write transaction
        try:
            before = _lane_answered(app)
            _is_503(client.post("/api/v1/checkout/commit", json=_sale(2)))
            assert _lane_answered(app) == before + 1  # the till's lane answered it
            _is_503(client.put("/api/v1/stores/TPE-102", json={"name": "x", "region": "台北市"}))
        finally:
            other.rollback()
            other.close()
        again = client.post("/api/v1/checkout/commit", json=_sale(2))  # the till's retry
        assert again.status_code == 201, again.text
        stores = client.get("/api/v1/stores").json()
        assert [s["code"] for s in stores] == ["TPE-101"]  # the refused write left nothing
    app.state.engine.dispose()


def test_a_failing_statement_is_still_a_500(db_url: str, engine: sa.Engine) -> None:
    """What the database refuses because OMO asked it wrongly is OMO's bug: not retried, not
    called unavailable."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE stores RENAME TO stores_moved")
    app = create_app(Settings(database_url=db_url, jobs_every_s=0))
    uow = UnitOfWork(app.state.engine)
    key = create_key(uow, name="k", store_code=None, scopes=None).key
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/v1/stores", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 500
    app.state.engine.dispose()
    with pytest.raises(sa.exc.DBAPIError) as failed, engine.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM stores")
    assert not database_unavailable(failed.value)
