"""Recording an action inside the transaction that does it (if it rolls back, so does its
entry), and reading the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.audit.models import AuditEntry
from omo.db import UnitOfWork
from omo.shared import clock


def record(
    session: Session, *, actor: str | None, action: str, target: str,
    detail: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    session.add(
        AuditEntry(
            at=clock.now(), actor=(actor or "unknown")[:80], action=action, target=target[:120],
            detail=detail or {},
        )
    )  # fmt: skip


def entries(
    uow: UnitOfWork, *, since: datetime | None = None, target: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Newest first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    with uow.read() as session:
        return [
            {"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target,
             "detail": e.detail}
            for e in session.scalars(query)
        ]  # fmt: skip
