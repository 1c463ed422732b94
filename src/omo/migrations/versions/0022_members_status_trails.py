"""members: the status moves to the end of its two indexes, so that a merge's change of status
rewrites one entry in place instead of moving it to another part of the index

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 19:50:00

(status, joined_at) and (status, name, birth_date) kept the active and the merged members in
two parts of each index: marking a member merged deleted an entry in one part and inserted it
in the other, two random pages of each index. (joined_at, status) and (name, birth_date,
status) keep the entry where it was. The same queries read them (each filters the status in
the index it scans). On the 1M-person world a resolution run's status UPDATE alone went 13.6 →
8.0 s, and the whole replay of its 89,954 merges 49.3-50.2 → 43.7-47.3 s (229 → 210 KB
written a merge).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain index statements, not a batch: on SQLite a batch may copy the whole table
    op.drop_index("ix_members_status_joined", table_name="members")
    op.drop_index("ix_members_status_name_birth", table_name="members")
    op.create_index("ix_members_joined_status", "members", ["joined_at", "status"])
    op.create_index("ix_members_name_birth_status", "members", ["name", "birth_date", "status"])


def downgrade() -> None:
    op.drop_index("ix_members_name_birth_status", table_name="members")
    op.drop_index("ix_members_joined_status", table_name="members")
    op.create_index("ix_members_status_name_birth", "members", ["status", "name", "birth_date"])
    op.create_index("ix_members_status_joined", "members", ["status", "joined_at"])
