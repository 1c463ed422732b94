"""The outbox's facts read page by page (`GET /api/v1/facts`): for a system that cannot take a
webhook (an ERP behind a firewall) and polls instead. The reader keeps its own position: each page
says where the next starts. The same facts and order a webhook posts, settled the same way."""

from __future__ import annotations

from collections.abc import Sequence

from omo.db import UnitOfWork
from omo.messaging import outbox, retention
from omo.shared import clock
from omo.shared.errors import Gone, ValidationFailed
from omo.webhooks.schemas import FactRead, FactsPage


def facts_after(
    uow: UnitOfWork, *, after: int, limit: int, topics: Sequence[str], settle_s: float
) -> FactsPage:
    """Up to `limit` facts past `after`, oldest first, of these topics (all if none). Facts of
    other topics are passed over: `next_after` may move past them with none answered. A reader
    behind facts removed past retention is refused (410), never answered as if none were lost;
    `after=0` (a new reader) starts at the oldest fact kept."""
    if unknown := sorted(set(topics) - outbox.TOPICS):
        raise ValidationFailed(
            f"unknown topic(s) {', '.join(unknown)}; known: {', '.join(sorted(outbox.TOPICS))}",
            field="topic",
        )
    now = clock.now()
    with uow.read() as session:
        if 0 < after < (through := retention.pruned_through(session)):
            raise Gone(
                f"the facts after {after} up to {through} were removed (older than the outbox "
                f"keeps them): read what changed since through the API, then go on with "
                f"after={through}",
                field="query.after", code="facts_removed", ctx={"after": after, "through": through},
            )  # fmt: skip
        read = outbox.unread(session, after=after, now=now, settle_s=settle_s, limit=limit)
        facts = [FactRead.model_validate(f) for f in read if not topics or f.topic in topics]
        return FactsPage(
            facts=facts, next_after=read[-1].id if read else after, more=len(read) == limit
        )
