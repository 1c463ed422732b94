"""Matching many composite keys in SQL so that the index is used on SQLite and PostgreSQL.

`(a, b, c) IN ((…), (…))` makes SQLite scan the whole table (it cannot use an index for a
row-value list); `(a = ? AND b = ? AND c IN (…)) OR …`, grouped by the leading columns, is an
index search on both databases. PostgreSQL plans such an OR slowly when it is long (20,000 order
ids in chunks of 500: 0.6 s), so there the keys travel as one array per column and are joined
by `(a, b, c) IN (SELECT * FROM unnest(…))` (the same 20,000: 0.1 s).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, and_, bindparam, false, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
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
    if len(distinct) < ARRAYS_FROM:
        return ors  # a few keys (an order's identifiers): the ORs serve both databases
    return _KeysIn(tuple(columns), distinct, ors)


# from this many keys PostgreSQL gets them as arrays (a long OR is what it plans slowly)
ARRAYS_FROM = 64


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
        ("arrays", InternalTraversal.dp_clauseelement_list),
        ("columns", InternalTraversal.dp_clauseelement_tuple),
    ]
    type = Boolean()

    def __init__(
        self, columns: tuple[Any, ...], keys: list[tuple[Any, ...]], ors: ColumnElement[bool]
    ) -> None:
        self.columns = columns
        self.ors = ors
        self.arrays = [
            bindparam(None, [key[n] for key in keys], type_=ARRAY(column.type))
            for n, column in enumerate(columns)
        ]


@compiles(_KeysIn)
def _grouped_ors(element: _KeysIn, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.ors, **kw)


@compiles(_KeysIn, "postgresql")
def _unnested(element: _KeysIn, compiler: SQLCompiler, **kw: Any) -> str:
    names = [f"k{n}" for n in range(len(element.arrays))]
    table = func.unnest(*element.arrays).table_valued(*names).render_derived()
    clause = tuple_(*element.columns).in_(select(*(table.c[name] for name in names)))
    return compiler.process(clause, **kw)
