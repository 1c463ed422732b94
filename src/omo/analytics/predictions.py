"""Per-member predictions from the figures: P(alive), purchases in the next 90/365 days, expected
order value, CLV, CLV tier and "at risk now". Time in days; a purchase is a day with one, as in
the papers. Pure: numpy only (the fits in analytics/clv.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from omo.analytics.clv import BgNbd, FitError, GammaGamma, fit_bgnbd, fit_gamma_gamma
from omo.analytics.pareto import ParetoNbd, fit_pareto_nbd

Model = Literal["bgnbd", "pareto"]
FITS: dict[str, Callable[[Any, Any, Any], BgNbd | ParetoNbd]] = {
    "bgnbd": fit_bgnbd,
    "pareto": fit_pareto_nbd,
}

# (tier, share of buyers by CLV from the top); the rest are "low"
CLV_TIERS: tuple[tuple[str, float], ...] = (("high", 0.2), ("medium", 0.5))
AT_RISK_ALIVE = 0.5  # at risk now: P(alive) below this …
AT_RISK_TOP_SHARE = 0.3  # … among the top 30 % of buyers by spend so far


@dataclass(frozen=True)
class Predictions:
    p_alive: NDArray[np.float64]
    purchases_90d: NDArray[np.float64]
    purchases_365d: NDArray[np.float64]
    order_value_cents: NDArray[np.float64]
    clv_cents: NDArray[np.float64]
    clv_tier: NDArray[np.object_]
    at_risk: NDArray[np.bool_]
    models: dict[str, Any]


def predict(
    purchase_days: NDArray[Any],
    first_day: NDArray[Any],
    last_day: NDArray[Any],
    tenure_days: NDArray[Any],
    spend_cents: NDArray[Any],
    first_day_cents: NDArray[Any],
    top_share: NDArray[Any],
    *,
    model: Model = "bgnbd",
) -> Predictions | None:
    """Predictions for buyers (every array one entry per buyer) with BG/NBD or Pareto/NBD for
    the purchases; None when the data cannot support a fit (too few buyers or nobody came
    back), which the refresh records."""
    x = np.asarray(purchase_days, dtype=float) - 1
    t_x = np.asarray(last_day, dtype=float) - np.asarray(first_day, dtype=float)
    T = np.asarray(tenure_days, dtype=float)
    repeat_cents = np.asarray(spend_cents, dtype=float) - np.asarray(first_day_cents, dtype=float)
    mean_repeat = np.divide(repeat_cents, x, out=np.zeros_like(x), where=x > 0)
    try:
        counts = FITS[model](x, t_x, T)
        spend_model = fit_gamma_gamma(x, mean_repeat)
    except FitError as exc:
        return _unfitted(str(exc), x.size) if x.size else None
    alive = counts.p_alive(x, t_x, T)
    in_90 = counts.conditional_expected_purchases(90, x, t_x, T)
    in_365 = counts.conditional_expected_purchases(365, x, t_x, T)
    order_value = spend_model.expected_spend(x, mean_repeat)
    clv = in_365 * order_value
    share = _top_share(clv)
    tier = np.full(x.size, "low", dtype=object)
    for label, cut in reversed(CLV_TIERS):
        tier[share <= cut] = label
    at_risk = (alive < AT_RISK_ALIVE) & (np.asarray(top_share, dtype=float) <= AT_RISK_TOP_SHARE)
    return Predictions(
        p_alive=alive,
        purchases_90d=in_90,
        purchases_365d=in_365,
        order_value_cents=order_value,
        clv_cents=clv,
        clv_tier=tier,
        at_risk=at_risk,
        models={model: _describe(counts), "gamma_gamma": _describe(spend_model), "unit": "day"},
    )


def _unfitted(reason: str, n: int) -> Predictions:
    nothing = np.full(n, np.nan)
    return Predictions(
        p_alive=nothing,
        purchases_90d=nothing,
        purchases_365d=nothing,
        order_value_cents=nothing,
        clv_cents=nothing,
        clv_tier=np.full(n, None, dtype=object),
        at_risk=np.zeros(n, dtype=bool),
        models={"error": reason},
    )


def _top_share(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Share of entries with a value >= each entry's (1/n for the largest); ties share."""
    order = np.sort(values)
    at_least = values.size - np.searchsorted(order, values, side="left")
    return np.asarray(at_least / values.size)


def _describe(model: BgNbd | ParetoNbd | GammaGamma) -> dict[str, float]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(model).items()}
