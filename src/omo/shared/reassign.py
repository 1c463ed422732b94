"""Re-pointing rows from one member to another, for merges: set-based, so a resolution run that
merges thousands of members moves their rows in a few statements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

CHUNK = 500


def reassign_rows(
    session: Session, *, id_col: Any, member_col: Any, mapping: Mapping[int, int]
) -> dict[int, list[int]]:
    """Move every row whose member is a key of `mapping` to mapping[key]; returns the moved row
    ids by the member they came from (what an undo puts back)."""
    moved: dict[int, list[int]] = {}
    froms = sorted(mapping)
    # Core, on the transaction's connection: the ORM's bulk-update path processed every
    # parameter set again
    session.flush()  # the rows read below are as the caller left them
    conn = session.connection()
    for start in range(0, len(froms), CHUNK):
        rows = conn.execute(
            select(id_col, member_col)
            .where(member_col.in_(froms[start : start + CHUNK]))
            .order_by(id_col)
        )
        for row_id, member_id in rows:
            moved.setdefault(member_id, []).append(row_id)
    if moved:
        stmt = (
            update(member_col.table)
            .where(member_col == bindparam("from_member"))
            .values({member_col.key: bindparam("to_member")})
        )
        conn.execute(stmt, [{"from_member": f, "to_member": mapping[f]} for f in moved])
    return moved


def restore_rows(
    session: Session, *, id_col: Any, member_col: Any, row_ids: list[int], from_id: int, to_id: int
) -> None:
    """Undo of reassign_rows for the rows that still sit with `from_id`."""
    for start in range(0, len(row_ids), CHUNK):
        session.execute(
            update(member_col.table)
            .where(id_col.in_(row_ids[start : start + CHUNK]), member_col == from_id)
            .values({member_col.key: to_id})
        )
