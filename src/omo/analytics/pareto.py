"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987) by maximum likelihood, the alternative to
BG/NBD: purchases at rate λ ~ Gamma(r, α) while alive, a lifetime ~ Exponential(μ) with
μ ~ Gamma(s, β) — a customer can leave at any moment, not only right after a purchase.

The log-likelihood is the closed form of Fader, Hardie & Lee (2005), "A Note on Implementing
the Pareto/NBD Model", with Gauss's hypergeometric function, computed in log space. Pure:
numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, hyp2f1

from omo.analytics.clv import Floats, _arrays, fit_counts


@dataclass(frozen=True)
class ParetoNbd:
    r: float
    alpha: float
    s: float
    beta: float
    log_likelihood: float
    customers: int

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Floats:
        """P(still a customer | x, t_x, T)."""
        alive, died = _terms((self.r, self.alpha, self.s, self.beta), *_arrays(x, t_x, T))
        return np.asarray(1.0 / (1.0 + np.exp(died - alive)))

    def conditional_expected_purchases(
        self, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> Floats:
        """E[Y(t) | x, t_x, T]: purchases in the next t periods of a customer with this
        history (s > 1; for s ≤ 1 the expected lifetime is unbounded and so is the limit form,
        so the finite-horizon integral is used)."""
        x, t_x, T = _arrays(x, t_x, T)
        r, alpha, s, beta = self.r, self.alpha, self.s, self.beta
        rate = (r + x) / (alpha + T)
        if abs(s - 1) < 1e-9:
            horizon = (beta + T) * np.log((beta + T + t) / (beta + T))
        else:
            horizon = (beta + T) / (s - 1) * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))
        return np.asarray(rate * horizon * self.p_alive(x, t_x, T))


def pareto_log_likelihood(params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Floats:
    """Each customer's log-likelihood under Pareto/NBD (r, α, s, β)."""
    r, alpha, s, beta = np.asarray(params, dtype=float)
    x, t_x, T = _arrays(x, t_x, T)
    alive, died = _terms((r, alpha, s, beta), x, t_x, T)
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return np.asarray(head + np.logaddexp(alive, died))


def fit_pareto_nbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> ParetoNbd:
    """Maximum-likelihood Pareto/NBD over customers' (x, t_x, T)."""
    (r, alpha, s, beta), ll, n = fit_counts(pareto_log_likelihood, x, t_x, T, scales=(0, 1, 0, 1))
    return ParetoNbd(r, alpha, s, beta, ll, n)


def _terms(
    params: tuple[float, float, float, float], x: Floats, t_x: Floats, T: Floats
) -> tuple[Floats, Floats]:
    """log of the two parts of the likelihood (without its head): alive until T, and gone at
    some moment between t_x and T."""
    r, alpha, s, beta = params
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    n = r + s + x
    # the hypergeometric's second parameter, the shift of time and the gap of the two scales
    b: Floats | float = s + 1 if alpha >= beta else r + x
    base, gap = (alpha, alpha - beta) if alpha >= beta else (beta, beta - alpha)
    near, far = base + t_x, base + T
    log_near = np.log(hyp2f1(n, b, n + 1, gap / near)) - n * np.log(near)
    log_far = np.log(hyp2f1(n, b, n + 1, gap / far)) - n * np.log(far)
    # A0 = F(t_x) − F(T) > 0 since the integrand is positive over (t_x, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a0 = log_near + np.log1p(-np.exp(log_far - log_near))
    died = np.log(s) - np.log(n) + log_a0
    return np.asarray(alive), np.asarray(died)
