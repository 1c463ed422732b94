"""Basket rules on DuckDB against the definitions computed by hand and by brute force."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omo.analytics.basket import BasketPolicy, itemset_rules, mine, purchase_items
from omo.analytics.engine import runner
from omo.analytics.sales import sold_lines


def bought_orders(order_ids: list[int]) -> pa.Table:
    return pa.table({"order_id": order_ids, "member_id": order_ids, "ordered_s": order_ids})


def rules_of(
    baskets: dict[int, list[str]], counted: list[int], min_orders: int, max_items: int = 2
) -> dict:
    lines = pa.table(
        {
            "order_id": [o for o, items in baskets.items() for _ in items],
            "sku": [i for items in baskets.values() for i in items],
            "category": [None for items in baskets.values() for _ in items],
        },
        schema=pa.schema(
            [("order_id", pa.int64()), ("sku", pa.string()), ("category", pa.string())]
        ),
    )
    with runner("duckdb") as engine:
        sold = sold_lines(
            engine, engine.table(lines, "lines"), engine.table(bought_orders(counted), "o")
        )
        items = purchase_items(sold, "sku")
        purchases = engine.to_arrow(items.aggregate(n=items.order_id.nunique()))["n"][0].as_py()
        table = itemset_rules(
            engine, items, purchases=purchases, min_orders=min_orders, max_items=max_items
        )
    found = {}
    for r in table.to_pylist():
        key = (r.pop("antecedent"), r.pop("antecedent_2"), r["consequent"])
        assert key not in found, f"rule {key} twice"
        found[(key[0], key[2]) if not key[1] else key] = r  # pairs (X, Y), triples (A, B, C)
    return found


def test_rules_of_five_baskets_counted_by_hand() -> None:
    baskets = {1: ["A", "B"], 2: ["A", "B", "C", "C"], 3: ["A", "C"], 4: ["B"], 5: ["A", "B"],
               9: ["A", "C"]}  # fmt: skip
    found = rules_of(baskets, counted=[1, 2, 3, 4, 5], min_orders=1)  # 9 is not a purchase
    # A in 4 of 5 purchases, B in 4, C in 2 (twice in purchase 2 counts once)
    assert found[("A", "B")] == {"consequent": "B", "orders": 3, "support": 0.6,
                                 "confidence": 0.75, "lift": 0.9375}  # fmt: skip
    assert (found[("A", "C")]["confidence"], found[("A", "C")]["lift"]) == (0.5, 1.25)
    assert (found[("C", "A")]["confidence"], found[("C", "A")]["lift"]) == (1.0, 1.25)
    assert found[("B", "C")]["orders"] == 1 and len(found) == 6
    # a pair must be bought together twice: B–C (once) goes, and C's rules with A stay
    assert set(rules_of(baskets, counted=[1, 2, 3, 4, 5], min_orders=2)) == {
        ("A", "B"), ("B", "A"), ("A", "C"), ("C", "A"),
    }  # fmt: skip


def test_two_item_antecedents_counted_by_hand() -> None:
    baskets = {1: ["A", "B", "C"], 2: ["A", "B", "C"], 3: ["A", "B"], 4: ["C"], 5: ["A", "C"]}
    found = rules_of(baskets, counted=list(baskets), min_orders=2, max_items=3)
    # {A, B} in 3 purchases, with C in 2 of them; C in 4 of 5
    ab_c = found[("A", "B", "C")]
    assert (ab_c["orders"], ab_c["support"]) == (2, 0.4)
    assert ab_c["confidence"] == pytest.approx(2 / 3)
    assert ab_c["lift"] == pytest.approx((2 / 3) / (4 / 5))
    assert found[("A", "C", "B")]["confidence"] == pytest.approx(2 / 3)  # {A, C} in 3
    assert found[("B", "C", "A")]["confidence"] == 1.0  # {B, C} in 2, both with A
    assert len([k for k in found if len(k) == 3]) == 3
    # pairs only: no triple rules, the same pair rules
    pairs = rules_of(baskets, counted=list(baskets), min_orders=2, max_items=2)
    assert pairs == {k: v for k, v in found.items() if len(k) == 2}
    # a triple bought together once is below the threshold of 2
    assert not [k for k in rules_of(baskets, list(baskets), 3, max_items=3) if len(k) == 3]


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.integers(1, 60),
        st.lists(st.sampled_from("ABCDEF"), min_size=1, max_size=5),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 4),
)
def test_rules_equal_brute_force(baskets: dict[int, list[str]], min_orders: int) -> None:
    n = len(baskets)
    sets = [set(items) for items in baskets.values()]
    single = Counter(i for s in sets for i in s)
    together = Counter(p for s in sets for p in combinations(sorted(s), 2))
    triples = Counter(t for s in sets for t in combinations(sorted(s), 3))
    expected = {}
    for (a, b), k in together.items():
        if k >= min_orders:
            for x, y in ((a, b), (b, a)):
                expected[(x, y)] = (k, k / n, k / single[x], k * n / (single[x] * single[y]))
    for (a, b, c), k in triples.items():
        if k >= min_orders:
            for x, y, z in ((a, b, c), (a, c, b), (b, c, a)):
                base = together[(x, y)]
                expected[(x, y, z)] = (k, k / n, k / base, k * n / (base * single[z]))
    found = rules_of(baskets, counted=list(baskets), min_orders=min_orders, max_items=3)
    got = {key: (r["orders"], r["support"], r["confidence"], r["lift"]) for key, r in found.items()}
    assert set(got) == set(expected)
    for key, values in expected.items():
        assert got[key] == pytest.approx(values)


def test_mine_gives_both_levels_and_an_empty_table_without_purchases() -> None:
    lines = pa.table({"order_id": [1, 1, 2, 2], "sku": ["A", "B", "A", "B"],
                      "category": ["帽子", "上衣", "帽子", "上衣"]})  # fmt: skip
    with runner("duckdb") as engine:
        t = engine.table(lines, "lines")
        sold = sold_lines(engine, t, engine.table(bought_orders([1, 2]), "o"))
        found = mine(engine, sold, BasketPolicy(2))
        nothing = sold_lines(engine, t, engine.table(bought_orders([7]), "p"))
        none = mine(engine, nothing, BasketPolicy())
    assert sorted(zip(found["level"].to_pylist(), found["antecedent"].to_pylist(), strict=True)) == [
        ("category", "上衣"), ("category", "帽子"), ("sku", "A"), ("sku", "B"),
    ]  # fmt: skip
    assert found["antecedent_2"].to_pylist() == [""] * 4
    assert none.num_rows == 0
    assert none.schema.names[:4] == ["level", "antecedent", "antecedent_2", "consequent"]


def test_mine_names_coded_items() -> None:
    """In a refresh the items are codes (analytics/snapshot.py); the rules name them."""
    lines = pa.table({"order_id": [1, 1, 1, 2, 2, 2], "sku": [0, 1, 2, 0, 1, 2],
                      "category": [0, 0, None, 0, 0, None]},
                     schema=pa.schema([("order_id", pa.int64()), ("sku", pa.int32()),
                                       ("category", pa.int32())]))  # fmt: skip
    names = {"sku": pa.array(["A", "B", "C"]), "category": pa.array(["帽子"])}
    with runner("duckdb") as engine:
        sold = sold_lines(
            engine, engine.table(lines, "lines"), engine.table(bought_orders([1, 2]), "o")
        )
        found = mine(engine, sold, BasketPolicy(2), names)
    rules = {(r["level"], r["antecedent"], r["antecedent_2"], r["consequent"])
             for r in found.to_pylist()}  # fmt: skip
    # one category per purchase, and a null category is no item: no category rules
    assert rules == {
        ("sku", "A", "", "B"), ("sku", "B", "", "A"), ("sku", "A", "", "C"),
        ("sku", "C", "", "A"), ("sku", "B", "", "C"), ("sku", "C", "", "B"),
        ("sku", "A", "B", "C"), ("sku", "A", "C", "B"), ("sku", "B", "C", "A"),
    }  # fmt: skip


def test_policy_refuses_nonsense_and_scales_with_purchases() -> None:
    assert BasketPolicy(min_orders=5, min_support=0.001).threshold(100_000) == 100
    assert BasketPolicy(min_orders=5, min_support=0.001).threshold(1_000) == 5
    with pytest.raises(ValueError, match="min_orders"):
        BasketPolicy(min_orders=0)
    with pytest.raises(ValueError, match="max_items"):
        BasketPolicy(max_items=4)
