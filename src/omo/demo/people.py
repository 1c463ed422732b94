"""The demo's true people: who they are, where they live, how they buy (drawn, vectorised).

Every parameter of the purchase process is drawn from a stated distribution (process()) and kept,
so that the predictive models can be scored against the truth:
- purchase rate λ per day ~ Gamma(shape r, rate α)            (BG/NBD's transaction process)
- dropout probability after each purchase p ~ Beta(a, b)       (BG/NBD's dropout process)
- mean spend per order ν: spend z ~ Gamma(shape p_s, rate ν), ν ~ Gamma(shape q, rate γ)
  (the Gamma-Gamma spend model; mean order value = p_s·γ/(q-1))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from faker.providers.address.zh_TW import Provider as AddressProvider
from faker.providers.person.zh_TW import Provider as PersonProvider
from pypinyin import Style, lazy_pinyin

from omo.demo.catalogue import STORES

RATE_R, RATE_ALPHA = 0.75, 110.0  # λ ~ Gamma(r, rate α): mean 0.0068/day ≈ 2.5 a year
DROP_A, DROP_B = 0.8, 5.0  # p ~ Beta(a, b): mean 0.14
SPEND_P, SPEND_Q, SPEND_GAMMA = 6.0, 4.0, 600.0  # mean order value p·γ/(q-1) = NT$1,200


def rate_alpha(purchases_per_year: float | None) -> float:
    """α of the purchase-rate Gamma for a mean rate (purchases a year while alive); None is the
    default world's α (a mean of ≈ 2.5 a year)."""
    if purchases_per_year is None:
        return RATE_ALPHA
    if not 0 < purchases_per_year <= 365:
        raise ValueError("purchases per year must lie in (0, 365]")
    return RATE_R * 365.25 / purchases_per_year


def process(alpha: float = RATE_ALPHA) -> dict[str, dict[str, object]]:
    """The stated distributions of the purchase process (written beside the data as truth)."""
    return {
        "purchase_rate_per_day": {"distribution": "gamma", "r": RATE_R, "alpha": alpha},
        "dropout": {"distribution": "beta", "a": DROP_A, "b": DROP_B},
        "spend": {"distribution": "gamma-gamma", "p": SPEND_P, "q": SPEND_Q, "gamma": SPEND_GAMMA},
    }


HABITS = ("store_only", "online_only", "omnichannel")
HABIT_SHARE = (0.40, 0.25, 0.35)

SURNAMES: list[str] = list(PersonProvider.last_names)
SURNAME_WEIGHTS = np.array(list(PersonProvider.last_names.values()), dtype=float)
GIVEN_F: list[str] = list(PersonProvider.first_names_female)
GIVEN_M: list[str] = list(PersonProvider.first_names_male)
STREETS: list[str] = list(AddressProvider.street_names)
STREET_SUFFIX = ("路", "街", "大道")
EMAIL_DOMAINS = ("gmail.com", "yahoo.com.tw", "hotmail.com", "outlook.com", "icloud.com")
EMAIL_WEIGHTS = np.array([0.5, 0.22, 0.12, 0.1, 0.06])
# where people live: the store cities (weighted) plus towns with no store
CITIES = [
    ("台北市", ("信義區", "大安區", "士林區", "中山區", "內湖區", "文山區"), 0.2),
    ("新北市", ("板橋區", "新店區", "中和區", "三重區", "新莊區", "淡水區"), 0.2),
    ("桃園市", ("桃園區", "中壢區", "龜山區"), 0.1),
    ("新竹市", ("東區", "北區"), 0.05),
    ("台中市", ("西區", "南區", "北屯區", "西屯區"), 0.14),
    ("台南市", ("中西區", "東區", "永康區"), 0.08),
    ("高雄市", ("左營區", "前鎮區", "三民區", "苓雅區"), 0.13),
    ("宜蘭縣", ("宜蘭市", "羅東鎮"), 0.03),
    ("花蓮縣", ("花蓮市",), 0.02),
    ("屏東縣", ("屏東市",), 0.05),
]


@dataclass
class People:
    """Column arrays, one row per true person (index = person id)."""

    n: int
    female: np.ndarray
    surname: np.ndarray  # index into SURNAMES
    given: np.ndarray  # index into GIVEN_F or GIVEN_M by sex
    birth_days: np.ndarray  # days since 1900-01-01
    city: np.ndarray  # index into CITIES
    district: np.ndarray  # index into the city's districts
    street: np.ndarray
    house: np.ndarray
    phone: np.ndarray  # the 8 digits after "09"
    email_domain: np.ndarray
    habit: np.ndarray  # index into HABITS
    home_store: np.ndarray  # index into STORES
    rate: np.ndarray  # λ, purchases per day
    dropout: np.ndarray  # p
    spend_nu: np.ndarray  # ν
    price_sensitive: np.ndarray  # bool
    acquired: np.ndarray  # seconds since the start of the window
    buys_at_once: np.ndarray  # bool: the first purchase happens on acquisition

    def name(self, i: int) -> str:
        given = GIVEN_F if self.female[i] else GIVEN_M
        return str(SURNAMES[self.surname[i]] + given[self.given[i]])

    def birth_date(self, i: int) -> date:
        return date(1900, 1, 1) + timedelta(days=int(self.birth_days[i]))

    def address(self, i: int) -> tuple[str, str, str]:
        city, districts, _ = CITIES[self.city[i]]
        street = STREETS[self.street[i] % len(STREETS)] + STREET_SUFFIX[self.street[i] % 3]
        return city, districts[self.district[i] % len(districts)], f"{street}{self.house[i]}號"

    def email(self, i: int) -> str:
        return f"{romanised_handle(self.name(i))}{i}@{EMAIL_DOMAINS[self.email_domain[i]]}"


def draw_people(
    rng: np.random.Generator, n: int, window_s: int, today: date, alpha: float = RATE_ALPHA
) -> People:
    female = rng.random(n) < 0.58
    surname = rng.choice(len(SURNAMES), n, p=SURNAME_WEIGHTS / SURNAME_WEIGHTS.sum())
    given = np.where(female, rng.integers(0, len(GIVEN_F), n), rng.integers(0, len(GIVEN_M), n))
    age_years = np.clip(rng.gamma(9.0, 4.0, n) + 14, 18, 80)
    birth = np.array([(today - date(1900, 1, 1)).days], dtype=np.int64) - (
        age_years * 365.25
    ).astype(np.int64)
    city_w = np.array([c[2] for c in CITIES])
    city = rng.choice(len(CITIES), n, p=city_w / city_w.sum())
    home = _home_stores(rng, city)
    # acquisitions grow over the window: density ∝ 1 + t/T
    u = rng.random(n)
    acquired = ((np.sqrt(1 + 3 * u) - 1) * window_s).astype(np.int64)
    return People(
        n=n,
        female=female,
        surname=surname,
        given=given,
        birth_days=birth,
        city=city,
        district=rng.integers(0, 6, n),
        street=rng.integers(0, len(STREETS) * 3, n),
        house=rng.integers(1, 300, n),
        phone=_unique(rng, n, 10**8),
        email_domain=rng.choice(len(EMAIL_DOMAINS), n, p=EMAIL_WEIGHTS),
        habit=rng.choice(len(HABITS), n, p=HABIT_SHARE),
        home_store=home,
        rate=rng.gamma(RATE_R, 1 / alpha, n),
        dropout=rng.beta(DROP_A, DROP_B, n),
        spend_nu=rng.gamma(SPEND_Q, 1 / SPEND_GAMMA, n),
        price_sensitive=rng.random(n) < 0.3,
        acquired=acquired,
        buys_at_once=rng.random(n) < 0.88,
    )


def _home_stores(rng: np.random.Generator, city: np.ndarray) -> np.ndarray:
    """A store in the person's city if there is one, else any store."""
    by_city: dict[str, list[int]] = {}
    for i, s in enumerate(STORES):
        by_city.setdefault(s[2], []).append(i)
    out = rng.integers(0, len(STORES), len(city))
    for ci, (name, _, _) in enumerate(CITIES):
        local = by_city.get(name)
        if local:
            mask = city == ci
            out[mask] = np.array(local)[rng.integers(0, len(local), int(mask.sum()))]
    return out


def _unique(rng: np.random.Generator, n: int, space: int) -> np.ndarray:
    """n distinct integers below `space`, in random order."""
    got = np.unique(rng.integers(0, space, int(n * 1.1) + 16))
    while len(got) < n:
        got = np.unique(np.concatenate([got, rng.integers(0, space, n)]))
    rng.shuffle(got)
    return got[:n]


_ROMAN: dict[str, str] = {}


def romanised(name: str) -> str:
    """A Taiwanese passport-style romanisation, given names first: 陳美玲 → Mei-Ling Chen."""
    # pypinyin writes ü as v (chvn); passports write u (Chun)
    parts = [
        p.replace("'", "").replace("ü", "u").replace("v", "u")
        for p in lazy_pinyin(name, style=Style.WADEGILES)
    ]
    surname, given = parts[0].capitalize(), "-".join(parts[1:]).title()
    return f"{given} {surname}".strip()


def romanised_handle(name: str) -> str:
    """An e-mail handle from a name: 陳美玲 → meiling.chen (cached per name)."""
    handle = _ROMAN.get(name)
    if handle is None:
        parts = lazy_pinyin(name)
        handle = f"{''.join(parts[1:])}.{parts[0]}"
        _ROMAN[name] = handle
    return handle
