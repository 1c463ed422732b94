"""Ids for new rows taken from the table's sequence before the row is written (PostgreSQL).

An INSERT … RETURNING id must wait for its answer before anything that names the new row can
be sent: a sale's order, then its lines, stats and points, cost a round trip each. With the id
taken first — and read ahead with the sale's other reads (`id_ahead`) — the INSERT needs no
answer and is queued (Prepared.execute_later) to go with the rows that name it. Elsewhere
(SQLite, an engine that does not queue) `next_id` answers None and the caller writes with
RETURNING as before. A sequence's number taken and not used is a gap, as a rolled-back INSERT
leaves one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from omo.shared.prepared import Prepared, queues

_NEXT: dict[str, Prepared] = {}


def _next(table: sa.Table) -> Prepared:
    found = _NEXT.get(table.name)
    if found is None:
        sequence = sa.func.pg_get_serial_sequence(sa.literal(table.name), sa.literal("id"))
        found = _NEXT[table.name] = Prepared(sa.select(sa.func.nextval(sequence)))
    return found


def id_ahead(session: Session, table: sa.Table) -> None:
    """next_id's read, read ahead (Prepared.ahead); nothing where next_id answers None."""
    if queues(session):
        _next(table).ahead(session, lasting=True)  # no write changes what it answers


def next_id(session: Session, table: sa.Table) -> int | None:
    """An id for a new row of `table` whose INSERT may then be queued; None where writes are
    not queued (write the row with RETURNING)."""
    if not queues(session):
        return None
    return int(_next(table).scalar(session))
