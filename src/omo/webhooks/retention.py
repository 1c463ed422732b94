"""Keeping the outbox to `OMO_OUTBOX_RETENTION_DAYS` (a pass of `omo jobs run`): facts older
than that, once the journeys' dispatcher has read them, are removed a chunk per transaction. A
subscription still behind them — switched off, or failing for that long — is moved past them and
their number is added to its `skipped` (with an audit entry), so its GET says what it never got;
a subscription being posted right now holds the removal at its position until it settles."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from omo.audit import service as audit
from omo.db import UnitOfWork
from omo.messaging import retention
from omo.shared import clock
from omo.webhooks.models import Webhook

CHUNK = 5_000  # facts removed in one transaction
BUDGET = 50_000  # facts removed in one pass at most (the rest waits for the next)


def prune_outbox(uow: UnitOfWork, *, retention_days: int, budget: int = BUDGET) -> int:
    """Remove what is past retention (0 days: keep every fact); how many facts went."""
    if retention_days <= 0:
        return 0
    now = clock.now()
    cutoff = now - timedelta(days=retention_days)
    removed = 0
    while removed < budget:
        chunk = min(CHUNK, budget - removed)
        n = uow.run(partial(_prune_chunk, cutoff=cutoff, now=now, limit=chunk))
        if n == 0:
            return removed
        removed += n
    return removed


def _prune_chunk(session: Session, *, cutoff: datetime, now: datetime, limit: int) -> int:
    through = retention.prunable_through(session, cutoff=cutoff, limit=limit)
    if not through:
        return 0
    hooks = list(session.scalars(select(Webhook).order_by(Webhook.id).with_for_update()))
    posting = [w.position for w in hooks if w.leased_until is not None and w.leased_until > now]
    through = min([through, *posting])
    for hook in hooks:
        if hook.position >= through:
            continue
        missed = retention.count_between(
            session, after=hook.position, through=through, topics=hook.topics
        )
        if missed:
            audit.record(
                session, actor="omo", action="webhook.skipped", target=f"webhook:{hook.name}",
                detail={"after": hook.position, "through": through, "facts": missed,
                        "cutoff": cutoff.isoformat()},
            )  # fmt: skip
        hook.position, hook.skipped = through, hook.skipped + missed
    return retention.remove_through(session, through=through, cutoff=cutoff, now=now)
