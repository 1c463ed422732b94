"""The demo brand: its stores across Taiwan and a catalogue whose margins differ by category."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

# code, name, region (city), district, opened
STORES: list[tuple[str, str, str, str, date]] = [
    ("TPE-101", "台北信義旗艦店", "台北市", "信義區", date(2015, 3, 1)),
    ("TPE-102", "台北忠孝店", "台北市", "大安區", date(2016, 9, 1)),
    ("TPE-103", "台北天母店", "台北市", "士林區", date(2018, 5, 1)),
    ("NTP-201", "板橋大遠百店", "新北市", "板橋區", date(2016, 11, 1)),
    ("NTP-202", "新店裕隆城店", "新北市", "新店區", date(2020, 10, 1)),
    ("TYN-301", "桃園統領店", "桃園市", "桃園區", date(2017, 4, 1)),
    ("HSZ-351", "新竹巨城店", "新竹市", "東區", date(2019, 6, 1)),
    ("TXG-401", "台中勤美店", "台中市", "西區", date(2016, 2, 1)),
    ("TXG-402", "台中大魯閣店", "台中市", "南區", date(2021, 8, 1)),
    ("TNN-501", "台南新天地店", "台南市", "中西區", date(2018, 10, 1)),
    ("KHH-601", "高雄漢神巨蛋店", "高雄市", "左營區", date(2017, 7, 1)),
    ("KHH-602", "高雄夢時代店", "高雄市", "前鎮區", date(2022, 3, 1)),
]


@dataclass(frozen=True)
class Category:
    name: str
    code: str
    low: int  # price range, NT$
    high: int
    margin: float  # gross margin share of price
    nouns: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category(
        "服飾", "APP", 390, 3_990, 0.62, ("棉T", "襯衫", "針織衫", "外套", "洋裝", "牛仔褲", "長裙")
    ),
    Category(
        "鞋包", "BAG", 890, 5_990, 0.55, ("托特包", "後背包", "皮夾", "休閒鞋", "涼鞋", "短靴")
    ),
    Category(
        "美妝保養", "BEA", 290, 2_490, 0.68, ("保濕精華", "防曬乳", "洗面乳", "面膜", "護手霜")
    ),
    Category(
        "生活家居", "HOM", 190, 2_990, 0.45, ("保溫杯", "馬克杯", "香氛蠟燭", "抱枕", "收納盒")
    ),
    Category(
        "3C配件", "TEC", 390, 4_990, 0.24, ("藍牙耳機", "行動電源", "充電線", "手機殼", "快充頭")
    ),
    Category("食品", "FOD", 120, 990, 0.35, ("烏龍茶", "鳳梨酥", "堅果禮盒", "手工餅乾", "咖啡豆")),
    Category(
        "運動", "SPT", 490, 3_490, 0.50, ("瑜珈墊", "運動內衣", "機能外套", "慢跑短褲", "水壺")
    ),
    Category("童裝", "KID", 290, 1_990, 0.57, ("童T", "連身衣", "兒童外套", "童襪組", "帽子")),
)
ADJECTIVES = ("經典", "輕量", "簡約", "日系", "有機", "限定", "奢華", "基本款", "機能", "復古")


@dataclass(frozen=True)
class Catalogue:
    sku: list[str]
    name: list[str]
    noun: list[str]  # what a shopper searches for
    category: list[str]
    price: np.ndarray  # whole NT$ (int64)
    cost_cents: np.ndarray  # int64
    category_index: np.ndarray  # int, into CATEGORIES
    # per category, product indices sorted by price (to pick a product near a target price)
    by_category: list[np.ndarray]


def make_catalogue(rng: np.random.Generator, per_category: int = 40) -> Catalogue:
    skus: list[str] = []
    names: list[str] = []
    nouns: list[str] = []
    cats: list[str] = []
    prices: list[int] = []
    costs: list[int] = []
    cat_idx: list[int] = []
    for ci, cat in enumerate(CATEGORIES):
        # log-uniform prices, rounded the way shops price (…90)
        raw = np.exp(rng.uniform(np.log(cat.low), np.log(cat.high), per_category))
        for n, p in enumerate(raw):
            price = max(cat.low, int(np.rint(p / 10.0)) * 10 - 10)
            margin = float(np.clip(rng.normal(cat.margin, 0.05), 0.05, 0.9))
            skus.append(f"{cat.code}-{n + 1:04d}")
            nouns.append(cat.nouns[n % len(cat.nouns)])
            names.append(
                f"{ADJECTIVES[rng.integers(len(ADJECTIVES))]}{cat.nouns[n % len(cat.nouns)]}"
            )
            cats.append(cat.name)
            prices.append(price)
            costs.append(int(np.rint(price * (1 - margin) * 100)))
            cat_idx.append(ci)
    price_arr = np.array(prices, dtype=np.int64)
    idx_arr = np.array(cat_idx, dtype=np.int64)
    by_cat = []
    for ci in range(len(CATEGORIES)):
        members = np.flatnonzero(idx_arr == ci)
        by_cat.append(members[np.argsort(price_arr[members], kind="stable")])
    return Catalogue(
        skus, names, nouns, cats, price_arr, np.array(costs, dtype=np.int64), idx_arr, by_cat
    )
