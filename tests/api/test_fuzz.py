"""Every endpoint of the OpenAPI schema fuzzed by schemathesis, on SQLite and on PostgreSQL:
whatever the generated input, no answer is a server error and every answer matches the schema
the API publishes. Bounded (examples per operation below) so the suite stays within its time.
The SQLite app and its database are made when the module loads (schemathesis reads the schema
at collection); the PostgreSQL one, the same app on the worker's server, when first called —
PostgreSQL refuses what SQLite keeps (text with NUL, a name longer than its column), and the
fuzz ran on SQLite alone before."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from omo.apikeys.service import create_key
from omo.app import create_app
from omo.db import UnitOfWork
from omo.settings import Settings
from tests.conftest import migrate

EXAMPLES = 12

_dir = Path(tempfile.mkdtemp(prefix="omo-fuzz-"))
atexit.register(shutil.rmtree, _dir, True)
_url = f"sqlite:///{_dir / 'omo.sqlite'}"
migrate(_url)
app = create_app(Settings(database_url=_url, secret_key="fuzz" * 8))
KEY = create_key(UnitOfWork(app.state.engine), name="fuzz", store_code=None, scopes=None).key
atexit.register(app.state.engine.dispose)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def target(request: pytest.FixtureRequest) -> Iterator[tuple[FastAPI, str]]:
    """The app to call and its key: the module's on SQLite, or the same app on a database of
    the worker's PostgreSQL server (tests/conftest.py), made from the migrated template."""
    if request.param == "sqlite":
        yield app, KEY
        return
    server, admin = request.getfixturevalue("pg_server")
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE omo_template")
    pg_app = create_app(Settings(database_url=server.url(name), secret_key="fuzz" * 8))
    key = create_key(UnitOfWork(pg_app.state.engine), name="fuzz", store_code=None, scopes=None)
    yield pg_app, key.key
    pg_app.state.engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")


@schema.parametrize()
# CI replays a fixed set of cases (a landing must not hang on a draw); locally each run explores
@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("CI") == "true",
)  # fmt: skip
def test_no_server_errors_and_answers_match_the_schema(
    case: Any, target: tuple[FastAPI, str]
) -> None:
    if case.path == "/api/v1/coupons/{code}" and (case.path_parameters or {}).get("code") == (
        "templates"
    ):  # GET /coupons/templates is the templates' list, matched first (said on the route)
        return
    called, key = target
    response = case.call(app=called, headers={"Authorization": f"Bearer {key}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
