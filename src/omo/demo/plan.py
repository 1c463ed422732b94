"""Everything decided per purchase, vectorised before rows are built: channel, store, pickup,
lines (Gamma-Gamma spend spread over products near the target price), discounts, funnel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omo.demo.catalogue import STORES, Catalogue
from omo.demo.people import SPEND_P, People
from omo.demo.purchases import Purchases

ONLINE = ("web", "app", "shopee", "momo")
ONLINE_WEIGHTS = np.array([0.4, 0.33, 0.17, 0.1])
CHANNELS = ("pos", *ONLINE)


@dataclass
class Plan:
    """Everything decided per purchase, vectorised before rows are built."""

    channel: np.ndarray  # index into CHANNELS
    store: np.ndarray  # index into STORES (pos, and pickup for online)
    pickup: np.ndarray  # bool: online order picked up in store
    line_start: np.ndarray  # index of the first line of each purchase; len = purchases + 1
    product: np.ndarray  # per line, into the catalogue
    quantity: np.ndarray
    discount_cents: np.ndarray
    cancelled: np.ndarray  # bool per purchase
    ad_click: np.ndarray  # bool per purchase (online)
    feedback: np.ndarray  # bool per purchase
    abandoned: np.ndarray  # int per purchase: carts abandoned before it
    minute: np.ndarray  # minute of the local day


def plan(
    rng: np.random.Generator,
    people: People,
    buys: Purchases,
    cat: Catalogue,
    online_boost: np.ndarray,
) -> Plan:
    n = buys.person.size
    who = buys.person
    day = buys.at.astype(np.int64)
    habit = people.habit[who]
    # channel: store-only people buy in stores; online-only online; omnichannel both, more
    # online in online seasons (Double 11)
    p_online = np.where(habit == 0, 0.0, np.where(habit == 1, 1.0, 0.4 * online_boost[day]))
    online = rng.random(n) < np.minimum(p_online, 0.95)
    # each person favours one online channel, with some spread to the others
    fav_online = rng.choice(len(ONLINE), people.n, p=ONLINE_WEIGHTS)
    online_ch = np.where(
        rng.random(n) < 0.75, fav_online[who], rng.choice(len(ONLINE), n, p=ONLINE_WEIGHTS)
    )
    channel = np.where(online, 1 + online_ch, 0)
    store = np.where(rng.random(n) < 0.9, people.home_store[who], rng.integers(0, len(STORES), n))
    pickup = online & (habit == 2) & (channel <= 2) & (rng.random(n) < 0.2)
    # spend: Gamma-Gamma, then lines that add up to about it
    z = rng.gamma(SPEND_P, 1.0, n) / people.spend_nu[who]
    k = np.clip(1 + rng.poisson(z / 1500.0), 1, 6)
    line_start = np.concatenate([[0], np.cumsum(k)])
    lines = int(line_start[-1])
    line_order = np.repeat(np.arange(n), k)
    fav_cat = rng.integers(0, len(cat.by_category), (people.n, 2))
    category = np.where(
        rng.random(lines) < 0.7,
        fav_cat[who[line_order], rng.integers(0, 2, lines)],
        rng.integers(0, len(cat.by_category), lines),
    )
    target = (z / k)[line_order]
    product = np.empty(lines, dtype=np.int64)
    for c, members in enumerate(cat.by_category):
        mask = category == c
        prices = cat.price[members]
        at = np.clip(np.searchsorted(prices, target[mask]), 0, len(members) - 1)
        # the nearer of the two neighbours
        lower = np.clip(at - 1, 0, len(members) - 1)
        nearer = np.where(
            np.abs(prices[lower] - target[mask]) < np.abs(prices[at] - target[mask]), lower, at
        )
        product[mask] = members[nearer]
    price = cat.price[product]
    quantity = np.clip(np.rint(target / price), 1, 5).astype(np.int64)
    # discounts: price-sensitive people buy on promotion; Double 11 discounts everyone
    promo_p = np.where(people.price_sensitive[who], 0.6, 0.12) * np.where(
        online_boost[day] > 1.5, 3, 1
    )
    promo = rng.random(n) < np.minimum(promo_p, 0.9)
    rate = np.where(promo, rng.choice([0.1, 0.2, 0.3], n), 0.0)[line_order]
    discount_cents = (np.floor(price * quantity * rate) * 100).astype(np.int64)
    minute = np.where(online, rng.choice(24 * 60, n), 11 * 60 + rng.integers(0, 10 * 60 + 30, n))
    return Plan(
        channel=channel,
        store=store,
        pickup=pickup,
        line_start=line_start,
        product=product,
        quantity=quantity,
        discount_cents=discount_cents,
        cancelled=online & (rng.random(n) < 0.03),
        ad_click=online & (rng.random(n) < 0.3),
        feedback=rng.random(n) < 0.08,
        abandoned=np.where(online, rng.poisson(0.6, n), 0),
        minute=minute,
    )
