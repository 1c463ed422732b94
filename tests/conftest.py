"""Fixtures: every integration and API test runs on SQLite and on a real PostgreSQL server,
each test on a fresh database whose schema comes from the migrations."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from omo.apikeys.service import create_key
from omo.app import create_app
from omo.cli import alembic_config
from omo.db import UnitOfWork, make_engine
from omo.settings import Settings
from omo.shared import clock
from omo.testing.postgres import PostgresServer, PostgresUnavailable

IN_CI = os.environ.get("CI") == "true"


def migrate(url: str) -> None:
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "omo.sqlite"
    migrate(f"sqlite:///{path}")
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def start_postgres() -> PostgresServer:
    """A PostgreSQL server from the machine's binaries: the test is skipped where there are
    none, and fails under CI, which must have them."""
    try:
        return PostgresServer().start()
    except PostgresUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI needs PostgreSQL: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[PostgresServer, sa.Engine]]:
    server = start_postgres()
    admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE omo_template")
    migrate(server.url("omo_template"))
    yield server, admin
    admin.dispose()
    server.stop()


@contextmanager
def fresh_database(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, stem: str = "omo"
) -> Iterator[str]:
    """A new database with the migrated schema: a copy of the SQLite template in `tmp_path`, or
    a PostgreSQL database made from the server's template (dropped afterwards)."""
    if backend == "sqlite":
        path = tmp_path / f"{stem}.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server, admin = request.getfixturevalue("pg_server")
    name = f"t_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE omo_template")
    yield server.url(name)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")


def empty_database(request: pytest.FixtureRequest, tmp_path: Path, backend: str, stem: str) -> str:
    """The URL of a database with nothing in it, not even a schema (a new SQLite file not yet
    made, or a new PostgreSQL database), as a restore or `omo db upgrade` starts from."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'{stem}.sqlite'}"
    server, admin = request.getfixturevalue("pg_server")
    name = f"{stem}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return str(server.url(name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request, tmp_path, request.param) as url:
        yield url


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)


@pytest.fixture
def engine(settings: Settings) -> Iterator[sa.Engine]:
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: sa.Engine) -> UnitOfWork:
    return UnitOfWork(engine)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as c:
        yield c
    app.state.engine.dispose()


@pytest.fixture
def api_key(uow: UnitOfWork) -> str:
    return create_key(uow, name="test-all", store_code=None, scopes=None).key


@pytest.fixture
def api(client: TestClient, api_key: str) -> TestClient:
    """A client whose key has every scope."""
    client.headers["Authorization"] = f"Bearer {api_key}"
    return client


@pytest.fixture(autouse=True)
def _real_clock() -> Iterator[None]:
    yield
    clock.reset_clock()


LOGS = frozenset({"audit_log", "sign_in_failures"})


def dump(
    engine: sa.Engine, *, skip: frozenset[str] = frozenset({"updated_at"}), logs: bool = False
) -> dict[str, Any]:
    """Every row of every table, for comparing whole database states; the audit log (which only
    grows, undo included) and the wrong passwords counted (users/throttle.py) when `logs`."""
    meta = sa.MetaData()
    meta.reflect(engine)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            if table.name == "alembic_version" or (table.name in LOGS and not logs):
                continue
            cols = [c for c in table.columns if c.name not in skip]
            rows = conn.execute(sa.select(*cols).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def fresh_python(code: str, env: dict[str, str] | None = None) -> Any:
    """Run `code` in a new interpreter and return the JSON its last printed line holds.

    For what needs a process with one thread (shared.forked forks only from one): earlier
    tests leave threads behind in this one (TestClient's portals, AnyIO's idle workers)."""
    import json
    import subprocess
    import sys
    import textwrap

    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def omo_cli(url: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """`omo <args>` on the database at `url`, in process: its exit code and what it printed
    (never a traceback)."""
    from typer.testing import CliRunner

    from omo.cli import app
    from omo.settings import get_settings

    monkeypatch.setenv("OMO_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()
    assert "Traceback" not in result.output and not isinstance(result.exception, Exception), (
        result.output
    )
    return result.exit_code, result.output
