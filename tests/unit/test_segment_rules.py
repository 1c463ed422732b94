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
        (
            "vip >= 4",
            "unknown field 'vip'; known fields: ad_clicks_30d, carts_30d, clv, cycle_days",
        ),
        ("r", "is not a comparison"),
        ("r + 1 > 4", "compare a field with a number"),
        ("r >= f", None),  # two fields are fine
        ("r in (1, 2)", "only < <= > >= == != compare"),
        ("__import__('os').system('true')", "the only function is tag"),
        ("tag()", "tag\\(\\) takes one quoted tag name"),
        ("tag(1)", "takes one quoted tag name"),
        ("tag('a', 'b')", "takes one quoted tag name"),
        ("tag(name='a')", "takes one quoted tag name"),
        ("tag('')", "1 to 80 characters"),
        ("tag('high_value') and r >= 4", None),
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


def test_tags_compile_to_an_exact_element_of_the_stored_json() -> None:
    import json

    import sqlalchemy as sa

    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column("tags", sa.Text))
    table.create(engine)
    rows = [["high_value", "bought:帽子"], ["bought:帽子帽"], [], ["bought:100%"]]
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": n, "tags": json.dumps(t)} for n, t in enumerate(rows)])

    def ids(rule: str) -> list[int]:
        condition = parse(rule).to_sql({"tags": table.c.tags})
        with engine.connect() as conn:
            return list(conn.scalars(sa.select(table.c.id).where(condition).order_by(table.c.id)))

    assert ids("tag('bought:帽子')") == [0]
    assert ids("not tag('high_value')") == [1, 2, 3]
    assert ids("tag('bought:100%')") == [3]
    assert ids("tag('bought:1%')") == []
    with pytest.raises(RuleError, match="saved segments"):
        parse("tag('x')").to_ibis(FIGURES)
