"""Market basket: which items are bought together, as association rules X → Y with support,
confidence and lift, per SKU and per category.

A set-based self-join of each purchase's distinct items on the engine (DuckDB or Spark), not an
itemset miner in Python: items seen in fewer than `min_orders` purchases are dropped before the
join (a pair is never more frequent than its rarer item), so the join stays small.

    support(X → Y)    = purchases with X and Y / purchases
    confidence(X → Y) = purchases with X and Y / purchases with X
    lift(X → Y)       = confidence(X → Y) / (purchases with Y / purchases)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import ibis
import pyarrow as pa

Level = Literal["sku", "category"]
LEVELS: tuple[Level, ...] = ("sku", "category")


@dataclass(frozen=True)
class BasketPolicy:
    min_orders: int = 5  # a pair must be bought together in at least this many purchases …
    min_support: float = 0.0002  # … and in at least this share of them

    def __post_init__(self) -> None:
        if self.min_orders < 1 or not 0 <= self.min_support < 1:
            raise ValueError("min_orders must be at least 1 and min_support in [0, 1)")

    def threshold(self, purchases: int) -> int:
        return max(self.min_orders, math.ceil(self.min_support * purchases))


def purchase_items(lines: Any, orders: Any, level: Level) -> Any:
    """(order_id, item): the distinct items of each purchase that counts."""
    kept = lines.semi_join(orders, lines.order_id == orders.order_id)
    items = kept.select(order_id=kept.order_id, item=kept[level])
    return items.filter(items.item.notnull() & (items.item != "")).distinct()


def pair_rules(items: Any, *, purchases: int, min_orders: int) -> Any:
    """Rules X → Y in both directions for every pair bought together at least `min_orders`
    times among `purchases` purchases (the number of distinct order ids in `items`)."""
    counts = items.group_by("item").aggregate(orders=items.count())
    frequent = counts.filter(counts.orders >= min_orders)
    kept = items.semi_join(frequent, items.item == frequent.item)
    left = kept.rename(a="item")
    right = kept.rename(b="item", order_b="order_id")
    joined = left.join(right, [left.order_id == right.order_b, left.a < right.b])
    pairs = joined.group_by(["a", "b"]).aggregate(together=joined.count())
    pairs = pairs.filter(pairs.together >= min_orders)
    both = pairs.select(antecedent=pairs.a, consequent=pairs.b, together=pairs.together).union(
        pairs.select(antecedent=pairs.b, consequent=pairs.a, together=pairs.together)
    )
    x = frequent.select(x_item=frequent.item, x_orders=frequent.orders)
    y = frequent.select(y_item=frequent.item, y_orders=frequent.orders)
    rules = both.join(x, both.antecedent == x.x_item).join(y, both.consequent == y.y_item)
    n = ibis.literal(purchases, type="int64")
    return rules.select(
        antecedent=rules.antecedent,
        consequent=rules.consequent,
        orders=rules.together,
        support=rules.together / n,
        confidence=rules.together / rules.x_orders,
        lift=(rules.together * n) / (rules.x_orders * rules.y_orders),
    )


def mine(engine: Any, lines: Any, orders: Any, policy: BasketPolicy) -> pa.Table:
    """Every level's rules as one Arrow table (level, antecedent, consequent, orders, support,
    confidence, lift), on the engine that holds `lines` and `orders`."""
    found = []
    for level in LEVELS:
        items = purchase_items(lines, orders, level)
        counted = engine.to_arrow(items.aggregate(n=items.order_id.nunique()))
        purchases = int(counted["n"][0].as_py() or 0)
        if purchases == 0:
            continue
        rules = pair_rules(items, purchases=purchases, min_orders=policy.threshold(purchases))
        table = engine.to_arrow(rules)
        found.append(table.add_column(0, "level", pa.array([level] * table.num_rows, pa.string())))
    if not found:
        return pa.table({name: pa.array([], type) for name, type in RULE_SCHEMA.items()})
    return pa.concat_tables(found).select(list(RULE_SCHEMA)).cast(pa.schema(RULE_SCHEMA))


RULE_SCHEMA: dict[str, pa.DataType] = {
    "level": pa.string(), "antecedent": pa.string(), "consequent": pa.string(),
    "orders": pa.int64(), "support": pa.float64(), "confidence": pa.float64(),
    "lift": pa.float64(),
}  # fmt: skip
