"""CLV on the demo world: the fit recovers the generator's process (written in the ground
truth), and its predictions beat a naive "the next half year repeats the last" on a holdout."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

import numpy as np
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from alembic import command

from omo.analytics.clv import BgNbd, GammaGamma, fit_bgnbd, fit_gamma_gamma
from omo.analytics.refresh import RefreshOptions, refresh
from omo.cli import alembic_config
from omo.db import UnitOfWork, make_engine
from omo.demo.load import DemoSpec, load_demo
from omo.demo.purchases import season_curves
from omo.settings import Settings

SPEC = DemoSpec(people=6000, seed=21, months=24, until=date(2026, 11, 1))
CALIBRATION_END = datetime(2026, 5, 1, tzinfo=UTC)
HOLDOUT_END = datetime(2026, 11, 1, tzinfo=UTC)
LOCAL = 8 * 3600  # the demo brand is in Taipei


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[UnitOfWork, dict]:
    folder = tmp_path_factory.mktemp("clv")
    url = f"sqlite:///{folder / 'world.sqlite'}"
    command.upgrade(alembic_config(url), "head")  # type: ignore[arg-type]
    engine = make_engine(Settings(database_url=url))
    load_demo(engine, SPEC, folder / "truth")
    import json

    truth = json.loads((folder / "truth" / "truth.json").read_text())
    truth["member_person"] = dict(
        zip(
            *pq.read_table(folder / "truth" / "records.parquet", columns=["member_id", "person_id"])
            .to_pydict()
            .values(),
            strict=True,
        )
    )
    return UnitOfWork(engine), truth


def purchase_days(uow: UnitOfWork, key: dict[int, int] | None = None) -> dict[int, dict[int, int]]:
    """{who: {local day: net cents}} for calibration-period purchases, by member or by person."""
    days: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    with uow.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT member_id, ordered_at, total - refunded_total FROM orders "
                "WHERE member_id IS NOT NULL AND status IN ('placed', 'completed') "
                "AND total > refunded_total"
            )
        )
        for member, at, net in rows:
            when = datetime.fromisoformat(str(at)).replace(tzinfo=UTC)
            if when <= CALIBRATION_END:
                who = key[member] if key else member
                days[who][int((when.timestamp() + LOCAL) // 86_400)] += net
    return days


def summary(days: dict[int, dict[int, int]]) -> tuple[np.ndarray, ...]:
    end = (CALIBRATION_END.timestamp() + LOCAL) // 86_400
    x, t_x, T, mean = [], [], [], []
    for spend in days.values():
        d = sorted(spend)
        x.append(len(d) - 1)
        t_x.append(d[-1] - d[0])
        T.append(end - d[0])
        mean.append(np.mean([spend[k] for k in d[1:]]) if len(d) > 1 else 0.0)
    return tuple(np.asarray(v, dtype=float) for v in (x, t_x, T, mean))


def test_the_fit_recovers_the_generators_process(world):
    """Fitted on true persons (all their member records together): the mean purchase rate,
    mean dropout and mean order value the generator drew from. Tolerances: the generator thins
    purchases by season (the truth's rate is scaled by the season's mean over the calibration
    window) and BG/NBD's clock starts at the first purchase, not at acquisition."""
    uow, truth = world
    process = truth["process"]
    x, t_x, T, mean = summary(purchase_days(uow, truth["member_person"]))
    bgnbd, spend = fit_bgnbd(x, t_x, T), fit_gamma_gamma(x, mean)
    start = date(2024, 11, 1)
    demand, _ = season_curves(start, (CALIBRATION_END.date() - start).days)
    rate = process["purchase_rate_per_day"]
    drop = process["dropout"]
    money = process["spend"]
    true_rate = rate["r"] / rate["alpha"] * demand.mean()
    true_dropout = drop["a"] / (drop["a"] + drop["b"])
    true_order_value = money["p"] * money["gamma"] / (money["q"] - 1)
    assert bgnbd.r / bgnbd.alpha == pytest.approx(true_rate, rel=0.2)
    assert bgnbd.a / (bgnbd.a + bgnbd.b) == pytest.approx(true_dropout, rel=0.35)
    assert spend.p * spend.gamma / (spend.q - 1) / 100 == pytest.approx(true_order_value, rel=0.1)


def test_predictions_beat_last_periods_spend_on_a_holdout(world):
    uow, _ = world
    run = refresh(uow, RefreshOptions(as_of=CALIBRATION_END))
    bgnbd = BgNbd(**run.models["bgnbd"])
    spend = GammaGamma(**run.models["gamma_gamma"])
    days = purchase_days(uow)
    members = list(days)
    x, t_x, T, mean = summary(days)
    horizon = (HOLDOUT_END - CALIBRATION_END).days
    predicted = bgnbd.conditional_expected_purchases(horizon, x, t_x, T) * spend.expected_spend(
        x, mean
    )
    end = (CALIBRATION_END.timestamp() + LOCAL) // 86_400
    naive = np.array(
        [sum(v for d, v in days[m].items() if d > end - horizon) for m in members], float
    )
    actual_by_member: dict[int, int] = defaultdict(int)
    with uow.engine.connect() as conn:
        for member, at, net in conn.execute(
            sa.text(
                "SELECT member_id, ordered_at, total - refunded_total FROM orders "
                "WHERE member_id IS NOT NULL AND status IN ('placed', 'completed') AND total > refunded_total"
            )
        ):
            when = datetime.fromisoformat(str(at)).replace(tzinfo=UTC)
            if CALIBRATION_END < when <= HOLDOUT_END:
                actual_by_member[member] += net
    actual = np.array([actual_by_member[m] for m in members], float)
    model_error = np.abs(predicted - actual).mean()
    naive_error = np.abs(naive - actual).mean()
    print(
        f"holdout {horizon} days, {len(members)} buyers: MAE model {model_error / 100:.0f} vs "
        f"naive {naive_error / 100:.0f} NT$; totals predicted {predicted.sum() / 100:.0f}, "
        f"naive {naive.sum() / 100:.0f}, actual {actual.sum() / 100:.0f}"
    )
    assert model_error < 0.9 * naive_error
    assert predicted.sum() == pytest.approx(actual.sum(), rel=0.15)
