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


def keys_in(columns: tuple[Any, ...], keys: Iterable[tuple[Any, ...]]) -> ColumnElement[bool]:
    """columns match one of keys; the last column varies fastest (it gets the IN list)."""
    distinct = list(dict.fromkeys(tuple(k) for k in keys))
    if not distinct:
        return false()
    return _KeysIn(tuple(columns), distinct)


class _KeysIn(ColumnElement[bool]):
    """Rendered per dialect when the statement is compiled (below)."""

    inherit_cache = False  # the keys are the statement: nothing to reuse
    type = Boolean()

    def __init__(self, columns: tuple[Any, ...], keys: list[tuple[Any, ...]]) -> None:
        self.columns = columns
        self.keys = keys


@compiles(_KeysIn)
def _grouped_ors(element: _KeysIn, compiler: SQLCompiler, **kw: Any) -> str:
    *leading, last = element.columns
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for key in element.keys:
        groups[key[:-1]].append(key[-1])
    clause = or_(
        *(
            and_(
                *(c == v for c, v in zip(leading, head, strict=True)), last.in_(sorted(set(tails)))
            )
            for head, tails in groups.items()
        )
    )
    return compiler.process(clause, **kw)


@compiles(_KeysIn, "postgresql")
def _unnested(element: _KeysIn, compiler: SQLCompiler, **kw: Any) -> str:
    arrays = [
        bindparam(None, [key[n] for key in element.keys], type_=ARRAY(column.type))
        for n, column in enumerate(element.columns)
    ]
    names = [f"k{n}" for n in range(len(arrays))]
    table = func.unnest(*arrays).table_valued(*names).render_derived()
    clause = tuple_(*element.columns).in_(select(*(table.c[name] for name in names)))
    return compiler.process(clause, **kw)
