"""The outbox's facts read page by page (`GET /api/v1/facts`): for a system that cannot take a
webhook (an ERP behind a firewall) and polls instead. The reader keeps its own position: each page
says where the next starts. The same facts and order a webhook posts, settled the same way."""

from __future__ import annotations

from collections.abc import Sequence

from omo.db import UnitOfWork
from omo.messaging import outbox
from omo.shared import clock
from omo.shared.errors import ValidationFailed
from omo.webhooks.schemas import FactRead, FactsPage


def facts_after(
    uow: UnitOfWork, *, after: int, limit: int, topics: Sequence[str], settle_s: float
) -> FactsPage:
    """Up to `limit` facts past `after`, oldest first, of these topics (all if none). Facts of
    other topics are passed over: `next_after` may move past them with none answered."""
    if unknown := sorted(set(topics) - outbox.TOPICS):
        raise ValidationFailed(
            f"unknown topic(s) {', '.join(unknown)}; known: {', '.join(sorted(outbox.TOPICS))}",
            field="topic",
        )
    now = clock.now()
    with uow.read() as session:
        read = outbox.unread(session, after=after, now=now, settle_s=settle_s, limit=limit)
        facts = [FactRead.model_validate(f) for f in read if not topics or f.topic in topics]
        return FactsPage(
            facts=facts, next_after=read[-1].id if read else after, more=len(read) == limit
        )
