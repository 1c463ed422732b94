"""Blocking rules keep to a pair budget: a rule too broad for the data narrows, or is left out."""

from __future__ import annotations

import pyarrow as pa

from omo.identity import linkage
from omo.identity.snapshot import SCHEMA


def records(n: int, *, names: int, cities: int) -> pa.Table:
    rows = [
        {"unique_id": i, "name_cjk": f"名{i % names}", "city": f"市{i % cities}",
         "district": f"區{i % 7}", "address": f"路{i}號", "birth_date": None}
        for i in range(n)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def test_pairs_made_counts_equal_keys_and_skips_nulls() -> None:
    t = records(10, names=5, cities=1)  # 5 names twice each
    assert linkage.pairs_made(t, ("name_cjk",)) == 5
    assert linkage.pairs_made(t, ("birth_date",)) == 0
    assert linkage.pairs_made(t, ("name_cjk", "city")) == 5


def test_an_over_budget_rule_narrows_then_drops() -> None:
    t = records(600, names=3, cities=5)  # 200 per name: 59,700 pairs; 40 per name+city: 11,700
    assert ("name_cjk",) in linkage.blocking_rules(t, budget=100_000)
    narrowed = linkage.blocking_rules(t, budget=20_000)
    assert ("name_cjk",) not in narrowed and ("name_cjk", "city") in narrowed
    tight = linkage.blocking_rules(t, budget=10)
    assert not any(r[0] == "name_cjk" for r in tight)
