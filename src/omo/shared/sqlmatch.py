"""Matching many composite keys in SQL so that the index is used on SQLite and PostgreSQL.

`(a, b, c) IN ((…), (…))` makes SQLite scan the whole table (it cannot use an index for a
row-value list); `(a = ? AND b = ? AND c IN (…)) OR …`, grouped by the leading columns, is an
index search on both databases. PostgreSQL plans such an OR slowly when it is long (20,000 order
ids in chunks of 500: 0.6 s), so there the keys travel as one JSON array of arrays and are joined
by `(a, b, c) IN (SELECT k ->> 0, … FROM json_array_elements(…) AS k)` (the same 20,000: 0.1 s).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, String, and_, bindparam, false, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


def keys_in(columns: tuple[Any, ...], keys: Iterable[tuple[Any, ...]]) -> ColumnElement[bool]:
    """columns match one of keys; the last column varies fastest (it gets the IN list)."""
    distinct = list(dict.fromkeys(tuple(k) for k in keys))
    if not distinct:
        return false()
    ors = _grouped(tuple(columns), distinct)
    if len(distinct) < MANY_FROM:
        return ors  # a few keys (an order's identifiers): the ORs serve both databases
    return _KeysIn(tuple(columns), distinct, ors)


# from this many keys PostgreSQL gets them as JSON (a long OR is what it plans slowly)
MANY_FROM = 64


def _grouped(columns: tuple[Any, ...], keys: list[tuple[Any, ...]]) -> ColumnElement[bool]:
    *leading, last = columns
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for key in keys:
        groups[key[:-1]].append(key[-1])
    return or_(
        *(
            and_(
                *(c == v for c, v in zip(leading, head, strict=True)), last.in_(sorted(set(tails)))
            )
            for head, tails in groups.items()
        )
    )


class _KeysIn(ColumnElement[bool]):
    """Both renderings' parts, built here so that the statement's cache key holds every bind
    parameter of either (a cached statement takes its values from them); each dialect renders
    its own (below)."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 - SQLAlchemy's own attribute, declared as theirs are
        ("ors", InternalTraversal.dp_clauseelement),
        ("keys", InternalTraversal.dp_clauseelement),
        ("columns", InternalTraversal.dp_clauseelement_tuple),
    ]
    type = Boolean()

    def __init__(
        self, columns: tuple[Any, ...], keys: list[tuple[Any, ...]], ors: ColumnElement[bool]
    ) -> None:
        self.columns = columns
        self.ors = ors
        self.keys = bindparam(None, json.dumps(keys), type_=String())


@compiles(_KeysIn)
def _grouped_ors(element: _KeysIn, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.ors, **kw)


@compiles(_KeysIn, "postgresql")
def _json_elements(element: _KeysIn, compiler: SQLCompiler, **kw: Any) -> str:
    """(a, b) IN (SELECT k ->> 0, k ->> 1 FROM json_array_elements(:keys) AS k): the keys as
    one JSON text, which the driver sends as it is, where arrays cost a regular expression per
    value to escape (4,000 identifiers: 16 ms a look-up against 9)."""
    picks = []
    for n, column in enumerate(element.columns):
        pick = f"k ->> {n}"
        if not isinstance(column.type, String):
            pick = f"CAST({pick} AS {compiler.dialect.type_compiler_instance.process(column.type)})"
        picks.append(pick)
    columns = ", ".join(compiler.process(c, **kw) for c in element.columns)
    keys = compiler.process(element.keys, **kw)
    # compiled column names and a bind parameter's placeholder: no values in this text
    return (
        f"({columns}) IN (SELECT {', '.join(picks)} "  # noqa: S608
        f"FROM json_array_elements(CAST({keys} AS JSON)) AS k)"
    )
