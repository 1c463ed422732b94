"""Use cases of staff tasks: create one (idempotent on its key), list a store's open tasks,
mark one done."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.db import UnitOfWork
from omo.shared import clock
from omo.shared.errors import Forbidden, NotFound
from omo.shared.reassign import reassign_rows
from omo.shared.reassign import restore_rows as restore
from omo.shared.rows import rows_of
from omo.tasks.models import StaffTask
from omo.tasks.schemas import TaskRead


def create_in(
    session: Session, *, member_id: int, store_id: int | None, kind: str, note: str, key: str,
    now: datetime,
) -> StaffTask:  # fmt: skip
    held = session.scalar(select(StaffTask).where(StaffTask.key == key))
    if held is not None:
        return held
    task = StaffTask(
        member_id=member_id, store_id=store_id, kind=kind, note=note, key=key, created_at=now
    )
    session.add(task)
    session.flush()
    return task


def open_tasks(uow: UnitOfWork, *, store_id: int | None, limit: int = 200) -> list[TaskRead]:
    """Open tasks, oldest first; of one store when given."""
    query = select(StaffTask).where(StaffTask.done_at.is_(None))
    if store_id is not None:
        query = query.where(StaffTask.store_id == store_id)
    with uow.read() as session:
        rows = session.scalars(query.order_by(StaffTask.id).limit(limit))
        return [TaskRead.model_validate(t) for t in rows]


def complete(uow: UnitOfWork, *, task_id: int, store_id: int | None) -> TaskRead:
    """Mark a task done (a store-bound caller only its own store's tasks)."""

    def run(session: Session) -> TaskRead:
        task = session.get(StaffTask, task_id)
        if task is None:
            raise NotFound(f"no task {task_id}", field="task_id")
        if store_id is not None and task.store_id != store_id:
            raise Forbidden("this task belongs to another store", field="task_id")
        task.done_at = task.done_at or clock.now()
        return TaskRead.model_validate(task)

    return uow.run(run)


def reassign_members(session: Session, mapping: Mapping[int, int]) -> dict[int, list[int]]:
    return reassign_rows(
        session, id_col=StaffTask.id, member_col=StaffTask.member_id, mapping=mapping
    )


def restore_rows(session: Session, *, row_ids: Sequence[int], from_id: int, to_id: int) -> None:
    restore(
        session, id_col=StaffTask.id, member_col=StaffTask.member_id, row_ids=list(row_ids),
        from_id=from_id, to_id=to_id,
    )  # fmt: skip


def export_rows(session: Session, member_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Everything this area holds on these members (a data-subject export)."""
    return {"staff_tasks": rows_of(session, StaffTask, StaffTask.member_id, member_ids)}
