"""When each person buys: a buy-till-you-die process with seasonality (vectorised).

Each person buys as a Poisson process of rate λ·s(t) from acquisition, where s(t) is the season
(Chinese New Year, 618, the brand's anniversary sale, Double 11, Christmas), and after each
purchase leaves for good with probability p. Seasonality is applied by thinning: candidates at
rate λ·max(s), each kept with probability s(t)/max(s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from omo.demo.people import People

# Lunar New Year's day; the three weeks before it are the year's biggest offline season.
LUNAR_NEW_YEAR = {
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
}
# (name, first day (month, day), days, all-channel multiplier, extra online multiplier)
SEASONS = [
    ("618", (6, 1), 18, 1.3, 1.4),
    ("anniversary", (9, 15), 16, 1.6, 1.0),
    ("double_11", (11, 1), 11, 1.4, 2.2),
    ("christmas", (12, 12), 14, 1.3, 1.0),
]


def season_curves(start: date, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Per day of the window: the demand multiplier, and the extra multiplier for online."""
    demand = np.ones(days)
    online = np.ones(days)
    for offset in range(days):
        d = start + timedelta(days=offset)
        lny = LUNAR_NEW_YEAR.get(d.year + (1 if d.month >= 12 else 0))
        if lny is not None and timedelta(0) <= lny - d <= timedelta(days=21):
            demand[offset] *= 1.8
        for _, (month, day), length, all_mult, online_mult in SEASONS:
            first = date(d.year, month, day)
            if first <= d < first + timedelta(days=length):
                demand[offset] *= all_mult
                online[offset] *= online_mult
    return demand, online


@dataclass
class Purchases:
    person: np.ndarray  # int64, sorted by time within the whole set
    at: np.ndarray  # float64 days since the start of the window
    # truth per person
    count: np.ndarray
    alive_at_end: np.ndarray  # bool
    last_at: np.ndarray  # days; NaN when the person never bought


def simulate(
    rng: np.random.Generator, people: People, window_days: int, demand: np.ndarray
) -> Purchases:
    n = people.n
    s_max = float(demand.max())
    t = people.acquired / 86_400.0
    alive = np.ones(n, dtype=bool)
    who: list[np.ndarray] = []
    when: list[np.ndarray] = []
    first = people.buys_at_once & (t < window_days)
    who.append(np.flatnonzero(first))
    when.append(t[first])
    alive[first] &= rng.random(int(first.sum())) >= people.dropout[first]
    active = np.flatnonzero(alive & (t < window_days))
    while active.size:
        t[active] += rng.exponential(1.0, active.size) / (people.rate[active] * s_max)
        inside = t[active] < window_days
        active = active[inside]
        day = t[active].astype(np.int64)
        kept = rng.random(active.size) < demand[day] / s_max
        bought = active[kept]
        who.append(bought)
        when.append(t[bought])
        died = rng.random(bought.size) < people.dropout[bought]
        alive[bought[died]] = False
        active = active[alive[active]]
    person = np.concatenate(who)
    at = np.concatenate(when)
    order = np.lexsort((person, at))
    person, at = person[order], at[order]
    count = np.bincount(person, minlength=n)
    last = np.full(n, np.nan)
    last[person] = at  # sorted by time, so the last write per person is their last purchase
    return Purchases(person=person, at=at, count=count, alive_at_end=alive, last_at=last)
