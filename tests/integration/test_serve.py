"""`omo serve` as an operator runs it: several worker processes (PostgreSQL) answer without
Nagle's delay; on SQLite, which has one writer, several processes are refused."""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from omo.cli import app
from omo.settings import get_settings
from omo.testing.postgres import PostgresServer
from omo.testing.serve import ServeProcess
from tests.conftest import omo_cli


@pytest.mark.postgres
def test_several_workers_answer_without_waiting_for_a_delayed_ack(
    pg_server: tuple[PostgresServer, sa.Engine],
) -> None:
    """uvicorn's shared socket left Nagle on for its workers' connections: each answer's body
    waited for the client's delayed ACK, ~40 ms, on an otherwise idle server."""
    server, admin = pg_server
    name = f"serve_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE omo_template")
    serving = ServeProcess(server.url(name), workers=2).start()
    try:
        with httpx.Client(base_url=serving.base) as client:
            for _ in range(20):
                client.get("/healthz")
            took = []
            for _ in range(40):
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                took.append(time.perf_counter() - started)
    finally:
        serving.stop()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    assert statistics.median(took) < 0.02, f"median {statistics.median(took) * 1000:.1f} ms"


def test_several_workers_on_sqlite_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMO_DATABASE_URL", f"sqlite:///{tmp_path / 'omo.sqlite'}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "several processes need PostgreSQL" in result.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--port", "99999"], "--port"),
        (["--port", "-1"], "--port"),
        (["--jobs-every", "-5"], "--jobs-every"),
    ],
)
def test_a_port_or_pass_interval_out_of_range_is_refused_before_serving(
    args: list[str], said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--port 99999 was uvicorn's traceback (bind(): port must be 0-65535) once the app was
    built; a negative --jobs-every a traceback of the settings inside the server."""
    code, out = omo_cli(f"sqlite:///{tmp_path / 'omo.sqlite'}", "serve", *args,
                        monkeypatch=monkeypatch)  # fmt: skip
    assert code == 2 and said in out, out
