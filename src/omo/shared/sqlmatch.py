"""Matching many composite keys in SQL so that the index is used on SQLite and PostgreSQL.

`(a, b, c) IN ((…), (…))` makes SQLite scan the whole table (it cannot use an index for a
row-value list); `(a = ? AND b = ? AND c IN (…)) OR …`, grouped by the leading columns, is an
index search on both databases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, false, or_
from sqlalchemy.sql.elements import ColumnElement


def keys_in(columns: tuple[Any, ...], keys: Iterable[tuple[Any, ...]]) -> ColumnElement[bool]:
    """columns match one of keys; the last column varies fastest (it gets the IN list)."""
    *leading, last = columns
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for key in keys:
        groups[tuple(key[:-1])].append(key[-1])
    if not groups:
        return false()
    return or_(
        *(
            and_(
                *(c == v for c, v in zip(leading, head, strict=True)), last.in_(sorted(set(tails)))
            )
            for head, tails in groups.items()
        )
    )
