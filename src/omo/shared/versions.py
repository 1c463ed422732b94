"""The newest row of a versioned settings table (the points rules, the tier programme), parsed
once per content per process.

Every sale reads both. Loading the row through the ORM and validating its JSON again cost
more than the query, so the newest row's JSON is read as text in Core and the value parsed
from it is kept, keyed by that text: a new version — written by this process or another — is
new text and parsed on first use. Keyed by content, not by id, so databases whose ids coincide
(tests, two installations in one process) never share a value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from omo.shared.prepared import Prepared

T = TypeVar("T")
KEEP = 16  # contents kept per table; more only after a burst of programme changes


class NewestVersion(Generic[T]):
    def __init__(self, table: sa.Table, payload: str, parse: Callable[[Any], T]) -> None:
        """`table`'s newest row by its `id`; `payload`: the column of JSON that `parse` reads."""
        self._newest = Prepared(
            sa.select(sa.cast(table.c[payload], sa.Text)).order_by(table.c.id.desc()).limit(1)
        )
        self._parse = parse
        self._parsed: dict[str, T] = {}  # replaced whole, never changed in place

    def get(self, session: Session, default: T) -> T:
        """The newest version's value in this transaction, or `default` when there is none."""
        text = self._newest.scalar(session)  # a version written in this transaction counts
        if text is None:
            return default
        held = self._parsed.get(text)
        if held is None:
            held = self._parse(json.loads(text))
            kept = dict(list(self._parsed.items())[-(KEEP - 1) :])
            self._parsed = {**kept, text: held}
        return held
