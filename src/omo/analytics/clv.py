"""BG/NBD and Gamma-Gamma by maximum likelihood: how often a member will buy, whether they still
do, and what they will spend.

Closed-form log-likelihoods from Fader, Hardie & Lee (2005), "Counting Your Customers the Easy
Way", and Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value". Customers are
summarised as (x repeat purchases, t_x time of the last one, T time since the first); identical
summaries are fitted once with a weight, so a million members with whole-day times cost a few
hundred thousand distinct rows. Pure: numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

Floats = NDArray[np.float64]


class FitError(ValueError):
    """The data cannot identify the model (too few customers or no repeat purchases)."""


@dataclass(frozen=True)
class BgNbd:
    """Purchase rate ~ Gamma(r, α); after each purchase the customer leaves with p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int

    def expected_purchases(self, t: ArrayLike) -> Floats:
        """E[X(t)]: purchases a new customer makes in their first t periods."""
        t = np.asarray(t, dtype=float)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + t)
        return np.asarray(
            (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))
        )

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Floats:
        """P(still a customer | x, t_x, T)."""
        x, t_x, T = _arrays(x, t_x, T)
        ratio = np.exp((self.r + x) * (np.log(self.alpha + T) - np.log(self.alpha + t_x)))
        odds = np.where(x > 0, self.a / (self.b + np.maximum(x, 1) - 1) * ratio, 0.0)
        return np.asarray(1.0 / (1.0 + odds))

    def conditional_expected_purchases(
        self, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> Floats:
        """E[Y(t) | x, t_x, T]: purchases in the next t periods of a customer with this history."""
        x, t_x, T = _arrays(x, t_x, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        decay = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
        body = 1 - decay * hyp2f1(r + x, b + x, a + b + x - 1, z)
        return np.asarray(head * body * self.p_alive(x, t_x, T))


@dataclass(frozen=True)
class GammaGamma:
    """Spend per purchase ~ Gamma(p, ν) with ν ~ Gamma(q, γ) across customers."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int

    def expected_spend(self, x: ArrayLike, mean_spend: ArrayLike) -> Floats:
        """E[spend per purchase | x repeat purchases averaging mean_spend]; the population mean
        for customers with no repeat purchase yet."""
        x = np.asarray(x, dtype=float)
        m = np.asarray(mean_spend, dtype=float)
        p, q, g = self.p, self.q, self.gamma
        population = p * g / (q - 1)
        weight = p * x / (p * x + q - 1)
        return np.asarray(np.where(x > 0, (1 - weight) * population + weight * m, population))


def bgnbd_log_likelihood(params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Floats:
    """Each customer's log-likelihood under BG/NBD (r, α, a, b)."""
    r, alpha, a, b = np.asarray(params, dtype=float)
    x, t_x, T = _arrays(x, t_x, T)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return np.asarray(a1 + a2 + np.logaddexp(a3, a4))


def gamma_gamma_log_likelihood(params: ArrayLike, x: ArrayLike, mean_spend: ArrayLike) -> Floats:
    """Each repeat customer's log-likelihood under Gamma-Gamma (p, q, γ), without the
    parameter-free term so it matches the published figures."""
    p, q, g = np.asarray(params, dtype=float)
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_spend, dtype=float)
    return np.asarray(
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(g)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(g + m * x)
    )


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> BgNbd:
    """Maximum-likelihood BG/NBD over customers' (x, t_x, T)."""
    (r, alpha, a, b), ll, n = fit_counts(bgnbd_log_likelihood, x, t_x, T, scales=(0, 1, 0, 0))
    return BgNbd(r, alpha, a, b, ll, n)


def fit_counts(
    log_likelihood: Callable[[Floats, Floats, Floats, Floats], Floats],
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    scales: tuple[int, ...],
) -> tuple[tuple[float, ...], float, int]:
    """Maximum likelihood for a purchase-count model over customers' (x, t_x, T): checked input,
    identical rows fitted once with a weight, positive parameters searched in log space
    starting at 1 (or at the mean T where `scales` says 1). Returns (parameters, LL, customers)."""
    x, t_x, T = _arrays(x, t_x, T)
    _check_summary(x, t_x, T)
    if not (x > 0).any():
        raise FitError("no customer has a repeat purchase: the purchase rate cannot be fitted")
    rows, weights = _unique_rows(np.column_stack([x, t_x, T]))
    ux, ut, uT = rows.T

    def negative(log_params: Floats) -> float:
        with np.errstate(all="ignore"):
            value = -float(weights @ log_likelihood(np.exp(log_params), ux, ut, uT))
        return value if np.isfinite(value) else 1e300

    scale = float(T.mean()) or 1.0
    best = _minimise(negative, np.log([scale if s else 1.0 for s in scales]))
    return tuple(float(v) for v in np.exp(best.x)), -float(best.fun), int(x.size)


def fit_gamma_gamma(x: ArrayLike, mean_spend: ArrayLike) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma over repeat customers' (x, mean spend of those purchases)."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_spend, dtype=float)
    keep = (x > 0) & (m > 0)
    if keep.sum() < 3:
        raise FitError("spend per purchase needs at least three customers with repeat purchases")
    rows, weights = _unique_rows(np.column_stack([x[keep], m[keep]]))
    ux, um = rows.T

    def negative(log_params: Floats) -> float:
        return -float(weights @ gamma_gamma_log_likelihood(np.exp(log_params), ux, um))

    start = np.log([1.0, 1.0, float(um.mean())])
    best = _minimise(negative, start)
    p, q, g = np.exp(best.x)
    return GammaGamma(float(p), float(q), float(g), -float(best.fun), int(keep.sum()))


def _minimise(objective: Callable[[Floats], float], start: Floats) -> Any:
    # L-BFGS-B in log space: ~100 likelihood evaluations where Nelder-Mead needs ~900 (6.5 s
    # against 1.2 s on 100k members); Nelder-Mead only when it fails, polished the same way.
    quick = minimize(objective, start, method="L-BFGS-B")
    if quick.success and np.isfinite(quick.fun):
        return quick
    rough = minimize(
        objective, start, method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 20_000},
    )  # fmt: skip
    polished = minimize(objective, rough.x, method="L-BFGS-B")
    best = polished if np.isfinite(polished.fun) and polished.fun <= rough.fun else rough
    if not np.isfinite(best.fun):
        raise FitError("the likelihood did not converge to a finite optimum")
    return best


def _unique_rows(rows: Floats) -> tuple[Floats, Floats]:
    """The distinct rows, sorted, and how often each occurs: np.unique(rows, axis=0) by a
    lexicographic sort, 4× faster on a million rows (np.unique sorts rows as opaque records)."""
    if len(rows) == 0:
        return rows, np.zeros(0)
    ordered = rows[np.lexsort(rows.T[::-1])]
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=first[1:])
    starts = np.flatnonzero(first)
    return ordered[starts], np.diff(np.append(starts, len(ordered))).astype(float)


def _arrays(*values: ArrayLike) -> tuple[Floats, ...]:
    return tuple(np.asarray(v, dtype=float) for v in values)


def _check_summary(x: Floats, t_x: Floats, T: Floats) -> None:
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        raise FitError("x, t_x and T must be one-dimensional and of one length")
    if x.size < 3:
        raise FitError("at least three customers are needed")
    if (x < 0).any() or (t_x < 0).any() or (t_x > T).any():
        raise FitError("need x >= 0 and 0 <= t_x <= T for every customer")
    if ((x == 0) & (t_x != 0)).any():
        raise FitError("a customer without repeat purchases must have t_x = 0")
