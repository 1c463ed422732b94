"""The lines that count, joined once with their purchase: what basket rules, new-product
penetration and the bought-category tags all read."""

from __future__ import annotations

from typing import Any


def sold_lines(engine: Any, lines: Any, bought: Any) -> Any:
    """(order_id, member_id, ordered_s, sku, category) of every line of the purchases in
    `bought`, held by the engine: three steps read it, and the join is the costly part."""
    joined = lines.join(bought, lines.order_id == bought.order_id)
    sold = joined.select(
        order_id=lines.order_id, member_id=bought.member_id, ordered_s=bought.ordered_s,
        sku=lines.sku, category=lines.category,
    )  # fmt: skip
    return engine.hold(sold, "sold_lines", small=False)
