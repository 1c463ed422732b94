"""Market basket: which items are bought together, as association rules X → Y with support,
confidence and lift, per SKU and per category; X is one item, or two ({A, B} → C: bought
together, they lead to C).

Items are whatever the lines hold, SKU and category codes in a refresh (analytics/snapshot.py),
turned back into names at the end. Set-based self-joins of each purchase's distinct items on
the engine (DuckDB or Spark), not an
itemset miner in Python, pruned as Apriori does: items seen in fewer than `min_orders` purchases
are dropped before the pair join (a pair is never more frequent than its rarer item), and only
purchases' pairs that are frequent themselves are extended by a third item (a triple is never
more frequent than any of its pairs), so the joins stay small.

    support(X → Y)    = purchases with X and Y / purchases
    confidence(X → Y) = purchases with X and Y / purchases with X
    lift(X → Y)       = confidence(X → Y) / (purchases with Y / purchases)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import ibis
import pyarrow as pa
import pyarrow.compute as pc

Level = Literal["sku", "category"]
LEVELS: tuple[Level, ...] = ("sku", "category")


@dataclass(frozen=True)
class BasketPolicy:
    min_orders: int = 5  # a pair must be bought together in at least this many purchases …
    min_support: float = 0.0002  # … and in at least this share of them
    max_items: int = 3  # the largest itemset mined: 2 = pairs only, 3 = {A, B} → C as well

    def __post_init__(self) -> None:
        if self.min_orders < 1 or not 0 <= self.min_support < 1:
            raise ValueError("min_orders must be at least 1 and min_support in [0, 1)")
        if self.max_items not in (2, 3):
            raise ValueError("max_items must be 2 (pairs) or 3 (pairs and triples)")

    def threshold(self, purchases: int) -> int:
        return max(self.min_orders, math.ceil(self.min_support * purchases))


def purchase_items(sold: Any, level: Level) -> Any:
    """(order_id, item): the distinct items of each purchase, from its lines (`sold`, see
    analytics/sales.py); no item is null or, as a name, ''."""
    items = sold.select(order_id=sold.order_id, item=sold[level])
    known = items.item.notnull()
    if items.item.type().is_string():
        known &= items.item != ""
    return items.filter(known).distinct()


def itemset_rules(
    engine: Any, items: Any, *, purchases: int, min_orders: int, max_items: int = 2
) -> pa.Table:
    """Rules X → Y for every itemset bought together at least `min_orders` times among
    `purchases` purchases (the number of distinct order ids in `items`): both directions of each
    pair, and with max_items=3 the three rules {A, B} → C of each triple. `antecedent_2` is the
    antecedent's second item (null for a one-item antecedent).

    The frequent items and pairs are small and used several times: they are computed once and
    handed back to the engine as tables (as expressions each use would recompute the pair join).
    """
    counts = items.group_by("item").aggregate(orders=items.count())
    frequent = engine.hold(counts.filter(counts.orders >= min_orders), "items", small=True)
    kept = items.semi_join(frequent, items.item == frequent.item)
    left = kept.rename(a="item")
    right = kept.rename(b="item", order_b="order_id")
    joined = left.join(right, [left.order_id == right.order_b, left.a < right.b])
    counted = joined.group_by(["a", "b"]).aggregate(together=joined.count())
    pairs = engine.hold(counted.filter(counted.together >= min_orders), "pairs", small=True)
    none = ibis.null(items.item.type())
    both = pairs.select(antecedent=pairs.a, consequent=pairs.b, together=pairs.together).union(
        pairs.select(antecedent=pairs.b, consequent=pairs.a, together=pairs.together)
    )
    x = frequent.select(x_item=frequent.item, base=frequent.orders)
    with_base = both.join(x, both.antecedent == x.x_item)
    found = with_base.select(
        antecedent=with_base.antecedent, antecedent_2=none, consequent=with_base.consequent,
        together=with_base.together, base=with_base.base,
    )  # fmt: skip
    if max_items == 3:
        found = found.union(_triple_rules(engine, joined, kept, pairs, min_orders))
    y = frequent.select(y_item=frequent.item, y_orders=frequent.orders)
    rules = found.join(y, found.consequent == y.y_item)
    n = ibis.literal(purchases, type="int64")
    return engine.to_arrow(
        rules.select(
            antecedent=rules.antecedent,
            antecedent_2=rules.antecedent_2,
            consequent=rules.consequent,
            orders=rules.together,
            support=rules.together / n,
            confidence=rules.together / rules.base,
            lift=(rules.together * n) / (rules.base * rules.y_orders),
        )
    )


def _triple_rules(engine: Any, joined: Any, kept: Any, pairs: Any, min_orders: int) -> Any:
    """{A, B} → C, {A, C} → B and {B, C} → A for each frequent triple A < B < C, with the
    purchases of the antecedent pair as `base`."""
    frequent_pairs = pairs.select(pa_=pairs.a, pb_=pairs.b)
    order_pairs = joined.semi_join(
        frequent_pairs, [joined.a == frequent_pairs.pa_, joined.b == frequent_pairs.pb_]
    )
    third = kept.rename(c="item", order_c="order_id")
    t = order_pairs.join(third, [order_pairs.order_id == third.order_c, order_pairs.b < third.c])
    counted = t.group_by(["a", "b", "c"]).aggregate(together=t.count())
    triples = engine.hold(counted.filter(counted.together >= min_orders), "triples", small=True)
    out = []
    for x, y, z in (("a", "b", "c"), ("a", "c", "b"), ("b", "c", "a")):
        p = pairs.select(px=pairs.a, py=pairs.b, base=pairs.together)
        r = triples.join(p, [triples[x] == p.px, triples[y] == p.py])
        out.append(
            r.select(
                antecedent=r[x], antecedent_2=r[y], consequent=r[z], together=r.together,
                base=r.base,
            )
        )  # fmt: skip
    return out[0].union(out[1]).union(out[2])


def mine(
    engine: Any, sold: Any, policy: BasketPolicy, names: Mapping[Level, pa.Array] | None = None
) -> pa.Table:
    """Every level's rules as one Arrow table (level, antecedent, antecedent_2, consequent,
    orders, support, confidence, lift; '' for a one-item antecedent's second item), on the
    engine that holds `sold` (analytics/sales.py). With `names`, a level's items are codes
    into names[level]."""
    found = []
    for level in LEVELS:
        # each purchase's distinct items, computed once: the pair and triple joins read them
        items = engine.hold(purchase_items(sold, level), f"{level}_of_purchase", small=False)
        counted = engine.to_arrow(items.aggregate(n=items.order_id.nunique()))
        purchases = int(counted["n"][0].as_py() or 0)
        if purchases == 0:
            continue
        table = itemset_rules(
            engine, items, purchases=purchases, min_orders=policy.threshold(purchases),
            max_items=policy.max_items,
        )  # fmt: skip
        table = _named(table, names[level] if names else None)
        found.append(table.add_column(0, "level", pa.array([level] * table.num_rows, pa.string())))
    if not found:
        return pa.table({name: pa.array([], type) for name, type in RULE_SCHEMA.items()})
    return pa.concat_tables(found).select(list(RULE_SCHEMA)).cast(pa.schema(RULE_SCHEMA))


def _named(rules: pa.Table, names: pa.Array | None) -> pa.Table:
    """The rules' items as names: codes looked up in `names`, or already names."""
    for column in ("antecedent", "antecedent_2", "consequent"):
        values = rules[column] if names is None else pc.take(names, rules[column])
        if column == "antecedent_2":
            values = pc.fill_null(values, "")
        rules = rules.set_column(rules.schema.get_field_index(column), column, values)
    return rules


RULE_SCHEMA: dict[str, pa.DataType] = {
    "level": pa.string(), "antecedent": pa.string(), "antecedent_2": pa.string(),
    "consequent": pa.string(),
    "orders": pa.int64(), "support": pa.float64(), "confidence": pa.float64(),
    "lift": pa.float64(),
}  # fmt: skip
