"""the suspected-duplicate KPI reads (status, name, birth date) from one covering index

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain index statements: no table copy, on SQLite or PostgreSQL
    op.drop_index("ix_members_name_birth", table_name="members")
    op.create_index("ix_members_status_name_birth", "members", ["status", "name", "birth_date"])


def downgrade() -> None:
    op.drop_index("ix_members_status_name_birth", table_name="members")
    op.create_index("ix_members_name_birth", "members", ["name", "birth_date"])
