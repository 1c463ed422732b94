"""who did it, in 80 characters: `ui:` and a username of 64 did not fit the 64 kept

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-07 21:00:00

A user may be named in 64 characters and the pages record `ui:<username>`; PostgreSQL refused
the ledger's, a refund's, a level's, a merge's or a reward's write of a longer one (SQLite kept
it). The columns now hold 80, as the audit log's and a closing's do. On PostgreSQL a varchar
made longer is a change of the catalogue only; SQLite's tables are copied (batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    "saved_segments": ("created_by",),
    "order_refunds": ("actor", "approved_by"),
    "returns_policies": ("actor",),
    "identity_merges": ("actor", "undone_by"),
    "identity_reviews": ("decided_by",),
    "journey_versions": ("actor",),
    "points_programmes": ("actor",),
    "points_entries": ("actor",),
    "reward_redemptions": ("actor", "fulfilled_by"),
    "reward_stock_moves": ("actor",),
    "tier_programmes": ("actor",),
}


def _resize(old: int, new: int) -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, existing_type=sa.String(length=old),
                                      type_=sa.String(length=new), existing_nullable=True)  # fmt: skip


def upgrade() -> None:
    _resize(64, 80)


def downgrade() -> None:
    _resize(80, 64)
