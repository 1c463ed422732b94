"""The segment rule language: what it accepts, what it refuses and why, what it selects."""

from __future__ import annotations

import ibis
import pytest

from omo.analytics.rules import RuleError, parse

FIGURES = ibis.memtable(
    {
        "member_id": [1, 2, 3, 4],
        "r": [5, 1, 3, None],
        "f": [4, 5, 1, None],
        "spend": [900.0, 20000.0, 50.0, None],
    }
)


def selected(rule: str) -> list[int]:
    expr = FIGURES.filter(parse(rule).to_ibis(FIGURES)).order_by("member_id")
    return ibis.duckdb.connect().to_pyarrow(expr)["member_id"].to_pylist()


@pytest.mark.parametrize(
    ("rule", "members"),
    [
        ("r >= 4", [1]),
        ("r >= 4 and f >= 4", [1]),
        ("r >= 4 or spend > 10000", [1, 2]),
        ("not (r >= 4)", [2, 3, 4]),  # a member with no figures is "not r >= 4"
        ("2 <= r <= 3", [3]),
        ("f == 1 or (r < 2 and spend >= 20000)", [2, 3]),
        ("spend != 50", [1, 2]),
        ("r > -1", [1, 2, 3]),
    ],
)
def test_rules_select_what_they_say(rule, members):
    assert selected(rule) == members


def test_a_rule_remembers_its_text_and_fields():
    rule = parse("  r >= 4 and spend > 100  ")
    assert rule.text == "r >= 4 and spend > 100"
    assert rule.fields == {"r", "spend"}


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("", "empty"),
        ("r >= ", "cannot read the rule"),
        ("vip >= 4", "unknown field 'vip'; known fields: clv, cycle_days, discount_share"),
        ("r", "is not a comparison"),
        ("r + 1 > 4", "compare a field with a number"),
        ("r >= f", None),  # two fields are fine
        ("r in (1, 2)", "only < <= > >= == != compare"),
        ("__import__('os').system('true')", "is not a comparison"),
        ("r >= 'x'", "compare a field with a number"),
        ("r >= True", "compare a field with a number"),
        ("1 < 2", "names no field"),
        ("r >= 1 " + "and r >= 1 " * 60, "longer than 500"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(rule, reason):
    if reason is None:
        parse(rule)
        return
    with pytest.raises(RuleError, match=reason):
        parse(rule)
