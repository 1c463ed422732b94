"""A small rule language over a member's figures and tags, e.g.
``r >= 4 and (f >= 4 or spend > 20000) and not tag('price_sensitive')``.

Merchants write segment rules in it; the built-in segments are written in it too, so the rule
shown is the rule run. A rule is parsed once into a tree (Python's own expression grammar, with
only comparisons, and/or/not, field names and numbers allowed), checked against the fields that
exist, and compiled to an engine-neutral Ibis boolean expression (batch) or a SQLAlchemy
condition (live counts over member_scores). Pure: no database.
"""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ibis
import sqlalchemy as sa

# field -> what it means; the columns of the member figures table (analytics/rfm.py)
FIELDS: Mapping[str, str] = {
    "r": "recency score, 1 (longest ago) … bins (most recent)",
    "f": "frequency score, 1 … bins",
    "m": "monetary score, 1 … bins",
    "recency_days": "days since the last purchase",
    "tenure_days": "days since the first purchase",
    "orders": "purchases (orders not cancelled nor refunded in full)",
    "purchase_days": "days with a purchase",
    "spend": "net spend in NT$ (after discounts and refunds)",
    "discount_share": "share of purchases that carried a discount, 0 … 1",
    "cycle_days": "mean days between purchase days (members with two or more)",
    "online_orders": "purchases online (web, app, marketplaces, LINE)",
    "offline_orders": "purchases in a store",
    "views_30d": "product views in the last 30 days",
    "carts_30d": "adds to cart in the last 30 days",
    "ad_clicks_30d": "ad clicks in the last 30 days",
    "nps_last": "the last NPS answer, 0 … 10, in the last 90 days (none: no answer)",
    "p_alive": "probability the member still buys (BG/NBD), 0 … 1",
    "clv": "expected spend in the next 365 days in NT$",
}

_COMPARE: Mapping[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
MAX_LENGTH = 500
MAX_TAG = 80


class RuleError(ValueError):
    """A rule that cannot be run, with where and why."""


@dataclass(frozen=True)
class Rule:
    text: str
    tree: ast.expr
    fields: frozenset[str]

    def to_ibis(self, table: Any) -> Any:
        """This rule as a boolean column of `table` (an Ibis table holding FIELDS)."""
        return _compile(self.tree, table.__getitem__, _IBIS)

    def to_sql(self, columns: Mapping[str, Any]) -> Any:
        """This rule as a SQLAlchemy condition over `columns` (field -> column expression)."""
        return _compile(self.tree, columns.__getitem__, _SQL)


def parse(text: str, *, allowed: Mapping[str, str] = FIELDS) -> Rule:
    """Parse and check a rule; RuleError says what is wrong."""
    text = text.strip()
    if not text:
        raise RuleError("the rule is empty")
    if len(text) > MAX_LENGTH:
        raise RuleError(f"the rule is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise RuleError(f"cannot read the rule near column {exc.offset}: {exc.msg}") from None
    used: set[str] = set()
    _check(tree, allowed, used)
    return Rule(text=text, tree=tree, fields=frozenset(used))


def _check(node: ast.expr, allowed: Mapping[str, str], used: set[str]) -> None:
    if isinstance(node, ast.Call):
        _check_tag(node)
        used.add("tags")
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, allowed, used)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, allowed, used)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise RuleError(f"column {node.col_offset + 1}: only < <= > >= == != compare")
        for side in (node.left, *node.comparators):
            if isinstance(side, ast.Name):
                if side.id not in allowed:
                    known = ", ".join(sorted(allowed))
                    raise RuleError(f"unknown field {side.id!r}; known fields: {known}")
                used.add(side.id)
            elif not _is_number(side):
                raise RuleError(
                    f"column {side.col_offset + 1}: compare a field with a number, "
                    f"not {ast.unparse(side)!r}"
                )
        if not any(isinstance(s, ast.Name) for s in (node.left, *node.comparators)):
            raise RuleError(f"column {node.col_offset + 1}: the comparison names no field")
    else:
        raise RuleError(
            f"column {node.col_offset + 1}: {ast.unparse(node)!r} is not a comparison; "
            "write e.g. 'r >= 4 and f >= 3'"
        )


def _check_tag(node: ast.Call) -> None:
    where = f"column {node.col_offset + 1}"
    if not (isinstance(node.func, ast.Name) and node.func.id == "tag"):
        raise RuleError(f"{where}: the only function is tag('name'), e.g. tag('bought:帽子')")
    arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        raise RuleError(f"{where}: tag() takes one quoted tag name, e.g. tag('high_value')")
    if not 1 <= len(arg.value) <= MAX_TAG:
        raise RuleError(f"{where}: a tag name has 1 to {MAX_TAG} characters")


def _is_number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )


@dataclass(frozen=True)
class _Target:
    literal: Callable[[bool], Any]
    known: Callable[[Any], Any]  # a comparison on a missing figure (NULL) counts as false
    # the member's tags (the field "tags", a JSON list) hold this one
    has_tag: Callable[[Callable[[str], Any], str], Any]


def _sql_has_tag(field: Callable[[str], Any], name: str) -> Any:
    # the JSON text holds the tag as json.dumps spells it, quotes included: an exact element
    found = sa.cast(field("tags"), sa.Text).contains(json.dumps(name), autoescape=True)
    return sa.func.coalesce(found, sa.false())


def _ibis_has_tag(field: Callable[[str], Any], name: str) -> Any:
    raise RuleError("tag() works on the stored scores (saved segments), not inside a refresh")


_IBIS = _Target(literal=ibis.literal, known=lambda e: e.fill_null(False), has_tag=_ibis_has_tag)
_SQL = _Target(
    literal=sa.literal, known=lambda e: sa.func.coalesce(e, sa.false()), has_tag=_sql_has_tag
)


def _compile(node: ast.expr, field: Callable[[str], Any], target: _Target) -> Any:
    if isinstance(node, ast.Call):
        name = node.args[0]
        assert isinstance(name, ast.Constant)
        return target.has_tag(field, str(name.value))
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, field, target) for v in node.values]
        joined = parts[0]
        for part in parts[1:]:
            joined = (joined & part) if isinstance(node.op, ast.And) else (joined | part)
        return joined
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ~_compile(node.operand, field, target)
    assert isinstance(node, ast.Compare)
    left = _operand(node.left, field)
    result = None
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _operand(right_node, field)
        part = _COMPARE[type(op)](left, right)
        if isinstance(part, bool):  # 1 < 2 < r: the constant part
            part = target.literal(part)
        result = part if result is None else (result & part)
        left = right
    assert result is not None
    return target.known(result)


def _operand(node: ast.expr, field: Callable[[str], Any]) -> Any:
    if isinstance(node, ast.Name):
        return field(node.id)
    return ast.literal_eval(node)
