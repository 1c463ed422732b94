"""Points for purchases made before the programme (`omo backfill-points`, SQLite + PostgreSQL):
imported orders earn nothing until a brand counts them; then each member order since the day
given earns as the programme earns now, dated from the order — pending through its window,
expired if its date has passed, less what a partial refund gave back — once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from omo.checkout.backfill import backfill
from omo.checkout.refunds import RefundLine, RefundRequest, refund
from omo.cli import app
from omo.db import UnitOfWork
from omo.points import service as points
from omo.settings import get_settings
from omo.shared import clock
from omo.shared.errors import ValidationFailed
from omo.transfer.importer import import_file
from tests.conftest import dump
from tests.factories import enrol

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Taipei
SINCE = datetime(2025, 1, 31, 16, 0, tzinfo=UTC)  # 1 February 2025 in Taipei
ORDERS = """channel,external_id,ordered_at,status,phone,sku,quantity,unit_price
web,O1,2025-01-10 10:00,completed,0912-000-001,A,1,1000
web,O2,2025-02-20 10:00,completed,0912-000-001,A,1,2000
web,O3,2026-02-28 10:00,completed,0912-000-001,A,1,1500
web,O4,2025-06-01 10:00,completed,,A,1,5000
web,O5,2025-07-01 10:00,cancelled,0912-000-001,A,1,9000
web,O6,2025-12-01 10:00,completed,0912-000-002,A,2,1500
web,O7,2025-12-02 10:00,completed,0912-000-002,A,1,99
"""


@pytest.fixture
def history(uow: UnitOfWork, tmp_path: Path) -> dict[str, int]:
    clock.set_clock(lambda: NOW)
    alice = enrol(uow, phone="0912-000-001").member.id
    bob = enrol(uow, phone="0912-000-002").member.id
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    import_file(uow, kind="orders", path=tmp_path / "orders.csv")
    with uow.read() as session:
        ids = dict(session.execute(sa.text("SELECT external_id, id FROM orders")).all())
    # one of bob's two units came back before the programme started
    refund(uow, order_id=ids["O6"], actor="t", req=RefundRequest(
        idempotency_key="back", lines=[RefundLine(line_no=1, quantity=1)]))  # fmt: skip
    assert points.summary(uow, member_id=alice).history == []  # history earns nothing
    return {"alice": alice, "bob": bob, **ids}


def test_purchases_since_the_day_earn_as_if_the_programme_had_run(
    history: dict[str, int], uow: UnitOfWork, engine: sa.Engine
) -> None:
    done = backfill(uow, since=SINCE)
    # O2 (20, expired 21 Feb 2026), O3 (15, pending), O6 (30, less 15 refunded); O7 earns 0
    assert (done.orders, done.points, done.expired) == (3, 50, 20)
    alice = points.summary(uow, member_id=history["alice"])
    assert (alice.available, alice.pending) == (0, 15)
    assert {(h.kind, h.points) for h in alice.history} == {
        ("earn", 20), ("expire", -20), ("earn", 15)}  # fmt: skip
    bob = points.summary(uow, member_id=history["bob"])
    assert (bob.available, bob.pending) == (15, 0)
    with uow.read() as session:
        assert points.check_ledger(session) == []
        earned = set(session.scalars(sa.text(
            "SELECT order_id FROM points_entries WHERE kind = 'earn'")))  # fmt: skip
    assert earned == {history["O2"], history["O3"], history["O6"]}

    before = dump(engine)
    again = backfill(uow, since=SINCE)
    assert (again.orders, again.points, again.expired) == (0, 0, 0)
    assert dump(engine) == before
    with pytest.raises(ValidationFailed, match="a moment past"):
        backfill(uow, since=datetime(2026, 3, 3, tzinfo=UTC))


def test_the_command(history: dict[str, int], db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMO_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        bad = runner.invoke(app, ["backfill-points", "--since", "2025/02/01"])
        assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
        assert runner.invoke(app, ["backfill-points", "--months", "0"]).exit_code == 2
        future = runner.invoke(app, ["backfill-points", "--since", "2099-01-01"])
        assert future.exit_code == 2 and "a moment past" in future.output
        done = runner.invoke(app, ["backfill-points", "--since", "2025-02-01"])
        assert done.exit_code == 0, done.output
        assert "3 orders earned 50 points; 20 expired at once" in done.output
    finally:
        get_settings.cache_clear()


def test_a_refund_during_the_backfill_is_not_earned_on(
    history: dict[str, int], uow: UnitOfWork, engine: sa.Engine, db_url: str
) -> None:
    """PostgreSQL: a refund in flight holds the member; the backfill waits for it and then
    reads the order as the refund left it — no points on money given back."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race is PostgreSQL's")
    import threading

    refund_ = engine.connect()  # a return of O3 in flight: it holds alice, as refunds do
    refund_.execute(sa.text("SELECT id FROM members WHERE id = :id FOR NO KEY UPDATE"),
                    {"id": history["alice"]})  # fmt: skip
    done = threading.Event()
    worker = threading.Thread(target=lambda: (backfill(uow, since=SINCE), done.set()))
    worker.start()
    assert not done.wait(0.5), "the backfill did not wait for the return"
    refund_.execute(sa.text("UPDATE orders SET refunded_total = total, status = 'refunded' "
                            "WHERE id = :id"), {"id": history["O3"]})  # fmt: skip
    refund_.commit()
    worker.join(20)
    assert done.is_set()
    refund_.close()
    with uow.read() as session:
        earned = set(session.scalars(sa.text(
            "SELECT order_id FROM points_entries WHERE kind = 'earn'")))  # fmt: skip
    assert history["O3"] not in earned
