"""BG/NBD and Gamma-Gamma against the published CDNOW figures and against simulated data."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from omo.analytics.clv import BgNbd, FitError, _unique_rows, fit_bgnbd, fit_gamma_gamma

CDNOW = Path(__file__).parent.parent / "data" / "CDNOW_sample.txt"
CALIBRATION_END = dt.date(1997, 9, 30)  # 39 weeks after 1997-01-01


def cdnow_summary() -> tuple[list[int], list[float], list[float], list[float]]:
    """(x, t_x, T) in weeks and the mean of the repeat purchases, purchases summed per day."""
    spend: dict[int, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for line in CDNOW.read_text().splitlines():
        _, customer, day, _quantity, amount = line.split()
        spend[int(customer)][dt.datetime.strptime(day, "%Y%m%d").date()] += float(amount)
    x, t_x, T, mean = [], [], [], []
    for customer in sorted(spend):
        days = sorted(d for d in spend[customer] if d <= CALIBRATION_END)
        x.append(len(days) - 1)
        t_x.append((days[-1] - days[0]).days / 7)
        T.append((CALIBRATION_END - days[0]).days / 7)
        repeats = [spend[customer][d] for d in days[1:]]
        mean.append(sum(repeats) / len(repeats) if repeats else 0.0)
    return x, t_x, T, mean


@pytest.fixture(scope="module")
def cdnow() -> tuple[list[int], list[float], list[float], list[float]]:
    return cdnow_summary()


def test_cdnow_summary_has_the_papers_counts(cdnow):
    x, _t_x, _T, _ = cdnow
    assert len(x) == 2357
    assert sum(1 for v in x if v > 0) == 946
    # the paper's worked example is the first customer
    assert (x[0], round(_t_x[0], 2), round(_T[0], 2)) == (2, 30.43, 38.86)


def test_bgnbd_reproduces_fader_hardie_lee_2005(cdnow):
    x, t_x, T, _ = cdnow
    model = fit_bgnbd(x, t_x, T)
    assert model.r == pytest.approx(0.243, abs=5e-4)
    assert model.alpha == pytest.approx(4.414, abs=5e-3)
    assert model.a == pytest.approx(0.793, abs=5e-4)
    assert model.b == pytest.approx(2.426, abs=5e-3)
    assert model.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert model.customers == 2357


def test_bgnbd_expectations_match_the_paper(cdnow):
    x, t_x, T, _ = cdnow
    model = fit_bgnbd(x, t_x, T)
    expected = model.expected_purchases([1, 3, 32, 78])
    assert expected == pytest.approx([0.0532, 0.1506, 1.0437, 1.8576], abs=5e-4)
    assert model.conditional_expected_purchases(39, 2, 30.43, 38.86) == pytest.approx(
        1.226, abs=1e-3
    )


def test_p_alive_is_one_without_repeat_purchases_and_falls_with_silence():
    model = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0.0, customers=0)
    alive = model.p_alive([0, 3, 3, 3], [0, 38, 20, 2], [39, 39, 39, 39])
    assert alive[0] == 1.0
    assert alive[1] > alive[2] > alive[3]
    assert 0 < alive[3] < 0.5


def test_gamma_gamma_reproduces_fader_hardie_2013(cdnow):
    x, _t_x, _T, mean = cdnow
    model = fit_gamma_gamma(x, mean)
    assert model.customers == 946
    assert model.p == pytest.approx(6.25, abs=5e-3)
    assert model.q == pytest.approx(3.74, abs=5e-3)
    assert model.gamma == pytest.approx(15.44, abs=5e-3)
    # the paper's worked example: E[M | x = 2, mean 22.35] ... shrunk towards the population mean
    spend = model.expected_spend([0, 2], [0.0, 22.35])
    population = model.p * model.gamma / (model.q - 1)
    assert spend[0] == pytest.approx(population)
    assert population < spend[1] < 22.35 or 22.35 < spend[1] < population


def test_fit_recovers_simulated_parameters():
    rng = np.random.default_rng(7)
    n, T = 20_000, 52.0
    r, alpha, a, b = 0.5, 6.0, 0.8, 3.0
    rates = rng.gamma(r, 1 / alpha, n)
    drop = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / rates[i])
            if t > T:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < drop[i]:
                break
    model = fit_bgnbd(x, t_x, np.full(n, T))
    assert model.r == pytest.approx(r, rel=0.1)
    assert model.alpha == pytest.approx(alpha, rel=0.15)
    assert model.a == pytest.approx(a, rel=0.25)
    assert model.b == pytest.approx(b, rel=0.3)


@pytest.mark.parametrize(
    ("x", "t_x", "T", "reason"),
    [
        ([0, 0, 0], [0, 0, 0], [5, 5, 5], "no customer has a repeat purchase"),
        ([1, 1], [1, 1], [2, 2], "at least three"),
        ([1, 2, 3], [4, 1, 1], [3, 3, 3], "t_x <= T"),
        ([0, 2, 3], [1, 1, 1], [3, 3, 3], "t_x = 0"),
        ([1, 2], [1, 1, 1], [3, 3, 3], "one length"),
    ],
)
def test_bad_summaries_are_refused(x, t_x, T, reason):
    with pytest.raises(FitError, match=reason):
        fit_bgnbd(x, t_x, T)


def test_gamma_gamma_needs_repeat_buyers():
    with pytest.raises(FitError, match="three customers"):
        fit_gamma_gamma([0, 1, 0], [0.0, 10.0, 0.0])


@given(st.lists(st.tuples(*[st.sampled_from([0.0, 1.0, 2.5, 7.0])] * 3), max_size=30))
def test_unique_rows_are_numpys(rows: list[tuple[float, float, float]]) -> None:
    """The fits merge identical customers with weights; the fast merge is np.unique's."""
    array = np.array(rows, dtype=float).reshape(-1, 3)
    unique, weights = _unique_rows(array)
    expected, counts = np.unique(array, axis=0, return_counts=True)
    assert np.array_equal(unique, expected) and np.array_equal(weights, counts)
