"""Pareto/NBD against the published CDNOW figures (Fader, Hardie & Lee 2005, "A Note on
Implementing the Pareto/NBD Model": r 0.553, α 10.578, s 0.606, β 11.669, LL −9594.98)."""

from __future__ import annotations

import numpy as np
import pytest

from omo.analytics.clv import FitError
from omo.analytics.pareto import ParetoNbd, fit_pareto_nbd, pareto_log_likelihood
from tests.unit.test_clv import cdnow_summary

PUBLISHED = ParetoNbd(r=0.553, alpha=10.578, s=0.606, beta=11.669, log_likelihood=0, customers=0)


@pytest.fixture(scope="module")
def cdnow() -> tuple[list[int], list[float], list[float], list[float]]:
    return cdnow_summary()


def test_pareto_nbd_reproduces_the_published_fit(cdnow) -> None:
    x, t_x, T, _ = cdnow
    model = fit_pareto_nbd(x, t_x, T)
    assert model.r == pytest.approx(0.553, abs=1e-3)
    assert model.alpha == pytest.approx(10.578, abs=1e-2)
    assert model.s == pytest.approx(0.606, abs=1e-3)
    assert model.beta == pytest.approx(11.669, abs=2e-2)
    assert model.log_likelihood == pytest.approx(-9594.98, abs=0.05)
    # the published parameters give the published likelihood through our formula too
    params = (PUBLISHED.r, PUBLISHED.alpha, PUBLISHED.s, PUBLISHED.beta)
    assert pareto_log_likelihood(params, x, t_x, T).sum() == pytest.approx(-9594.98, abs=0.1)


def test_both_branches_of_the_hypergeometric_agree_where_they_meet() -> None:
    x, t_x, T = np.array([0, 1, 4, 12]), np.array([0, 5.0, 20.0, 30.0]), np.array([39.0] * 4)
    below = pareto_log_likelihood((0.5, 10.0 - 1e-7, 0.6, 10.0), x, t_x, T)
    above = pareto_log_likelihood((0.5, 10.0 + 1e-7, 0.6, 10.0), x, t_x, T)
    assert below == pytest.approx(above, abs=1e-6)


def test_p_alive_and_expected_purchases_behave() -> None:
    m = PUBLISHED
    silent = m.p_alive([3, 3, 3], [10, 10, 10], [20, 40, 80])
    assert 1 >= silent[0] > silent[1] > silent[2] > 0  # the longer the silence, the likelier gone
    recent = m.p_alive([3], [39], [39])[0]
    assert recent > silent[1]
    ahead = m.conditional_expected_purchases(np.array([13.0, 39.0, 78.0]), 3, 30, 39)
    assert 0 < ahead[0] < ahead[1] < ahead[2]
    # a customer just seen who bought often expects more than one who bought once long ago
    frequent = m.conditional_expected_purchases(39, 10, 38, 39)[()]
    once = m.conditional_expected_purchases(39, 1, 2, 39)[()]
    assert frequent > 5 * once


def test_bad_input_is_refused() -> None:
    with pytest.raises(FitError, match="repeat purchase"):
        fit_pareto_nbd([0, 0, 0], [0, 0, 0], [5, 6, 7])
    with pytest.raises(FitError, match="t_x <= T"):
        fit_pareto_nbd([1, 2, 3], [5, 9, 3], [4, 10, 10])
