"""`omo demo --trade-days N`: the demo's last days played through the real checkout, refunds and
enrolment, with the clock at each moment (SQLite + PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from omo.cli import app
from omo.commerce import service as commerce
from omo.commerce.models import Order, OrderLine
from omo.coupons import service as coupons
from omo.db import UnitOfWork
from omo.demo.load import DemoSpec, load_demo
from omo.demo.trading import Traded, trade
from omo.points import service as points
from omo.referrals import service as referrals
from omo.rewards import service as rewards
from omo.settings import get_settings
from tests.conftest import dump

SPEC = DemoSpec(people=900, seed=5, months=14, until=date(2026, 9, 1))
START = SPEC.world_end()
END = START + timedelta(days=21)


def _trade(uow: UnitOfWork) -> Traded:
    """At tills of whole dollars (OMO_PRICE_UNIT=1): every amount the engine works out is one."""
    return trade(uow, start=START, end=END, seed=5, currency="TWD", region="TW", unit=Decimal(1))


@pytest.fixture
def traded(engine: sa.Engine, uow: UnitOfWork, tmp_path: Path) -> Traded:
    load_demo(engine, SPEC, tmp_path / "truth")
    return _trade(uow)


def test_the_days_are_traded_through_the_loyalty_engine_once(
    traded: Traded, engine: sa.Engine, uow: UnitOfWork
) -> None:
    assert traded.sales > 100
    assert traded.coupons_used > 10
    assert traded.points_redeemed > 0
    assert traded.refunds > 0
    assert traded.enrolled > 20 and 0 < traded.referred < traded.enrolled
    assert traded.backfilled_points > 0
    assert (traded.refused, traded.skipped) == (0, 0), traded.notes
    with uow.read() as session:
        assert points.check_ledger(session) == []
        assert coupons.check_counters(session) == []
        assert commerce.check_orders_and_stats(session) == []
        assert rewards.check_redemptions(session) == []
        assert referrals.check_referrals(session) == []
    with engine.connect() as conn:
        q = conn.execute
        # every sale at its own moment, inside the days traded; the imported world before them
        first, last, n = q(sa.text(
            "SELECT min(ordered_at), max(ordered_at), count(*) FROM orders "
            "WHERE external_id LIKE 'demo-%'"
        )).one()  # fmt: skip
        assert n == traded.sales
        assert _aware(first) >= START and _aware(last) < END
        imported_last = q(sa.text(
            "SELECT max(ordered_at) FROM orders WHERE external_id NOT LIKE 'demo-%'"
        )).scalar()  # fmt: skip
        assert _aware(imported_last) < START
        # the ledger's dates are the clock's: the year before credited at the start, nothing later
        # than the end
        credited = [_aware(t) for (t,) in q(sa.text("SELECT created_at FROM points_entries"))]
        assert min(credited) >= START and max(credited) <= END
        assert q(sa.text("SELECT count(*) FROM referrals WHERE status = 'rewarded'")).scalar()
        used = q(sa.text(
            "SELECT count(*) FROM coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id "
            "JOIN coupon_templates t ON t.id = c.template_id WHERE t.code = 'ANNIV150'"
        )).scalar()  # fmt: skip
        assert used and used <= traded.coupons_used
        spent = q(sa.text("SELECT -sum(points) FROM points_entries WHERE kind = 'redeem'")).scalar()
        assert spent == traded.points_redeemed
        refunded = q(sa.text("SELECT count(*) FROM order_refunds")).scalar()
        assert refunded == traded.refunds
        levels = q(sa.text("SELECT count(DISTINCT level) FROM member_tiers")).scalar()
        assert levels and levels > 1
    with uow.read() as session:  # whole dollars: the level's discount, coupons, points, refunds
        amounts = session.execute(
            sa.select(OrderLine.discount, Order.discount_total, Order.total, Order.refunded_total)
            .join(Order, Order.id == OrderLine.order_id).where(Order.external_id.like("demo-%"))
        ).all()  # fmt: skip
    assert all(v % 1 == 0 for row in amounts for v in row)
    assert sum(1 for row in amounts if row[0]) > 10 and sum(1 for row in amounts if row[1]) > 10
    assert any(row[3] for row in amounts)
    # a second run does nothing (one test: each builds a world, the suite's slowest setup)
    before = dump(engine)
    again = _trade(uow)
    assert again.sales == again.refunds == again.enrolled == again.backfilled_points == 0
    assert again.skipped == traded.sales + traded.refunds + traded.enrolled
    assert dump(engine) == before


def _aware(value: object) -> object:
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace(" ", "T"))
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_the_command(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if db_url.startswith("postgresql"):
        pytest.skip("the command is the same on both; the trading is tested on both above")
    monkeypatch.setenv("OMO_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        args = ["demo", "--no-serve", "--people", "300", "--months", "6", "--truth",
                str(tmp_path / "truth")]  # fmt: skip
        bad = runner.invoke(app, [*args, "--trade-days", "-1"])
        assert bad.exit_code == 2
        ahead = runner.invoke(app, [*args, "--trade-days", "5", "--until", "2099-01-01"])
        assert ahead.exit_code == 2 and "must be past" in ahead.output
        done = runner.invoke(app, [*args, "--trade-days", "5"])
        assert done.exit_code == 0, done.output
        assert "traded " in done.output and " sales (" in done.output
        today = DemoSpec().end_day()
        assert f"until={today - timedelta(days=5)}" in done.output
    finally:
        get_settings.cache_clear()
