"""Mapped objects for reading only, built from a row's values without the ORM's bookkeeping.

A sale reads its store and products and hands back the order, its lines and its ledger entry
it has just written by prepared statements (shared/prepared.py). Building those as ORM objects
ran the instrumentation's events for every attribute: 17 µs for an order, about 6 % of an
in-process commit for the seven objects of a sale. An untracked object holds its values in its
`__dict__`, where SQLAlchemy's attributes read them first; it has no ORM state, so it belongs
to no session and cannot be added to one (SQLAlchemy refuses it), and a change to it is never
written. Use it only for values that are already in the database or about to be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy.orm import configure_mappers

T = TypeVar("T")


_configured = False


def untracked(cls: type[T], values: Mapping[str, Any]) -> T:
    """An instance of mapped class `cls` holding `values` (every column, by attribute name)."""
    global _configured
    if not _configured:
        # the class's attributes read `__dict__` only once the mappers are configured, which
        # the ORM does on its first query: a process whose first work is a sale has had none
        configure_mappers()
        _configured = True
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj
