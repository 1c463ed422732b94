"""Faults under load (issue 8): the server is SIGKILLed in the middle of a busy day and started
again, or PostgreSQL crashes and restarts under it; the clients retry with their idempotency
keys. Afterwards every sale the clients were told about is recorded once, nothing else is, each
earned its points once and spent its coupon once, every acknowledged refund applied once — and
`omo check` reports zero differences."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from omo.db import UnitOfWork, make_engine
from omo.settings import Settings
from omo.testing.load import Outcome, World, build_world, run_load, summary, verify
from omo.testing.postgres import PostgresServer, PostgresUnavailable
from omo.testing.serve import ServeProcess
from tests.conftest import IN_CI, migrate

pytestmark = pytest.mark.postgres

LOAD_S = 8.0
RATE = 40.0


@pytest.fixture
def durable_pg() -> Iterator[PostgresServer]:
    """A server of its own (the test restarts it), with fsync on as in production."""
    try:
        server = PostgresServer(durable=True).start()
    except PostgresUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI needs PostgreSQL: {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def shop(durable_pg: PostgresServer) -> Iterator[tuple[str, sa.Engine, World]]:
    admin = sa.create_engine(durable_pg.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE shop")
    admin.dispose()
    url = durable_pg.url("shop")
    migrate(url)
    engine = make_engine(Settings(database_url=url))
    world = build_world(UnitOfWork(engine), members=300)
    yield url, engine, world
    engine.dispose()


def load_with_fault(base: str, world: World, fault: Callable[[], None]) -> Outcome:
    """Offer the day's mix for LOAD_S seconds and strike `fault` a third of the way in."""
    result: list[Outcome] = []
    worker = threading.Thread(
        target=lambda: result.append(
            run_load(base, world, rate=RATE, seconds=LOAD_S, clients=8, retry_for=60)
        )
    )
    worker.start()
    time.sleep(LOAD_S / 3)
    fault()
    worker.join(timeout=120)
    assert result, "the load did not finish"
    return result[0]


def omo_check(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omo.cli", "check"],
        env={**os.environ, "OMO_DATABASE_URL": url}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def assert_nothing_lost(url: str, engine: sa.Engine, out: Outcome) -> None:
    print(*summary(out), sep="\n")
    assert out.errors == []
    assert len(out.commits) > 50 and out.refunds, "the load did not sell and refund"
    assert verify(engine, out) == []
    checked = omo_check(url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": 0 difference(s)") == 5, checked.stdout


def test_the_server_killed_mid_load_loses_and_doubles_nothing(
    shop: tuple[str, sa.Engine, World],
) -> None:
    url, engine, world = shop
    server = ServeProcess(url, workers=2).start()
    before = server.pid

    def kill_and_restart() -> None:
        server.kill()  # SIGKILL to the whole process group: requests die half-done
        time.sleep(0.5)
        server.start()

    try:
        out = load_with_fault(server.base, world, kill_and_restart)
    finally:
        server.stop()
    assert server.pid != before
    assert out.retries > 0, "no request felt the kill"
    assert_nothing_lost(url, engine, out)


def test_postgres_crashing_mid_load_loses_and_doubles_nothing(
    shop: tuple[str, sa.Engine, World], durable_pg: PostgresServer
) -> None:
    url, engine, world = shop
    server = ServeProcess(url, workers=2).start()
    try:
        # immediate: every backend killed and crash recovery on start, as after a power cut
        out = load_with_fault(
            server.base, world, lambda: durable_pg.restart(mode="immediate", down_s=1.0)
        )
    finally:
        server.stop()
    assert out.retries > 0, "no request felt the restart"
    engine.dispose()  # the test's own pool holds connections the crash cut
    assert_nothing_lost(url, engine, out)


def test_answers_lost_on_the_way_are_replayed_not_doubled(
    shop: tuple[str, sa.Engine, World],
) -> None:
    """Every request's first try gives up after 5 ms: the server still commits those sales,
    and the retry must get the recorded sale back (a replay), not a second one."""
    url, engine, world = shop
    server = ServeProcess(url, workers=2).start()
    try:
        out = run_load(
            server.base, world, rate=RATE, seconds=LOAD_S, clients=8, first_timeout=0.005
        )
    finally:
        server.stop()
    # most sales outlive their first try's 5 ms; a few may be refused before they get far
    assert out.replays > len(out.commits) / 2, "answers were not lost after sales were recorded"
    assert_nothing_lost(url, engine, out)
