"""The newest row of a versioned settings table (the points rules, the tier programme), parsed
once per content per process.

Every sale reads both. Loading the row through the ORM and validating its JSON again cost
more than the query, so the newest row's JSON is read as text in Core and the value parsed
from it is kept, keyed by that text: a new version — written by this process or another — is
new text and parsed on first use. Keyed by content, not by id, so databases whose ids coincide
(tests, two installations in one process) never share a value.

`read_together` reads several versioned tables' newest texts in one statement, for the next
`get` of each in the transaction: a sale needs the points rules and the tier programme, and
on PostgreSQL each statement is a round trip.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from omo.shared.pins import memo
from omo.shared.prepared import Prepared

T = TypeVar("T")
KEEP = 16  # contents kept per table; more only after a burst of programme changes


class NewestVersion(Generic[T]):
    def __init__(self, table: sa.Table, payload: str, parse: Callable[[Any], T]) -> None:
        """`table`'s newest row by its `id`; `payload`: the column of JSON that `parse` reads."""
        newest = sa.select(sa.cast(table.c[payload], sa.Text)).order_by(table.c.id.desc()).limit(1)
        self._newest = Prepared(newest)
        self.subquery = newest.scalar_subquery()
        self._parse = parse
        self._parsed: dict[str, T] = {}  # replaced whole, never changed in place

    def get(self, session: Session, default: T) -> T:
        """The newest version's value in this transaction, or `default` when there is none."""
        read = memo(session, "versions")
        # read_together's text is used once; else read now (a version written in this transaction
        # counts)
        text: str | None = (
            cast(str | None, read.pop(self)) if self in read else self._newest.scalar(session)
        )
        if text is None:
            return default
        held = self._parsed.get(text)
        if held is None:
            held = self._parse(json.loads(text))
            kept = dict(list(self._parsed.items())[-(KEEP - 1) :])
            self._parsed = {**kept, text: held}
        return held


_TOGETHER: dict[tuple[NewestVersion[Any], ...], Prepared] = {}  # one statement per set read


def _together(wanted: tuple[NewestVersion[Any], ...]) -> Prepared:
    statement = _TOGETHER.get(wanted)
    if statement is None:
        statement = _TOGETHER[wanted] = Prepared(sa.select(*(v.subquery for v in wanted)))
    return statement


def read_together_ahead(session: Session, *wanted: NewestVersion[Any]) -> None:
    """read_together's statement, read ahead (Prepared.ahead)."""
    _together(wanted).ahead(session)


def read_together(session: Session, *wanted: NewestVersion[Any]) -> None:
    """The newest text of each of `wanted` in one statement, kept for the next `get` of each."""
    row = _together(wanted).first(session)
    if row is None:  # pragma: no cover - a SELECT of scalar subqueries has one row
        return
    read = memo(session, "versions")
    for version, text in zip(wanted, row, strict=True):
        read[version] = text
