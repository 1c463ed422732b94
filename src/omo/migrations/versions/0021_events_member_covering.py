"""events: the member index carries kind, survey and score, the kind/time index no longer holds
the member: a merge's move of events rewrites one member's run of entries, not a page per event

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 16:10:00

0020 put member_id into (kind, occurred_at) so the refresh read 90 days from that index alone.
Every event a merge moves then rewrote an entry at a random place of it: on the 1M-person world
that index was 60 % of the bytes a resolution run wrote (538 → 225 KB a merge without it). The
member index (member_id, occurred_at) grows to (member_id, occurred_at, kind, survey, score):
a merge deletes and inserts each member's entries side by side, and the refresh scans it alone
(1M world: 0.8 s through the old index, 1.6 s scanning this one, 4.1 s with table look-ups).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MEMBER_COVERING = ["member_id", "occurred_at", "kind", "survey", "score"]
_KIND_COVERING = ["kind", "occurred_at", "member_id", "survey", "score"]


def upgrade() -> None:
    # plain index statements, not a batch: on SQLite a batch may copy the whole table
    op.drop_index("ix_events_kind_occurred", table_name="events")
    op.create_index("ix_events_kind_occurred", "events", ["kind", "occurred_at"], unique=False)
    op.drop_index("ix_events_member_occurred", table_name="events")
    op.create_index("ix_events_member_occurred", "events", _MEMBER_COVERING, unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_member_occurred", table_name="events")
    op.create_index(
        "ix_events_member_occurred", "events", ["member_id", "occurred_at"], unique=False
    )
    op.drop_index("ix_events_kind_occurred", table_name="events")
    op.create_index("ix_events_kind_occurred", "events", _KIND_COVERING, unique=False)
