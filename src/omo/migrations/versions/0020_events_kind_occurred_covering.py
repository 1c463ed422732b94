"""events by kind and time carry member, survey and score: the refresh's 90 days of behaviour
read from the index alone

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 20:10:00

With 25 M events (the 10 M-order benchmark world) the refresh's read of the last 90 days found
its 3.8 M rows through (kind, occurred_at) and then looked each one up in the table: 13 s of
random reads. The index replaces the old one (same leading columns, so every query that used
it still does) and costs an insert no more index writes than before.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain index statements, not a batch: on SQLite a batch may copy the whole table
    op.drop_index("ix_events_kind_occurred", table_name="events")
    op.create_index(
        "ix_events_kind_occurred",
        "events",
        ["kind", "occurred_at", "member_id", "survey", "score"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_events_kind_occurred", table_name="events")
    op.create_index("ix_events_kind_occurred", "events", ["kind", "occurred_at"], unique=False)
