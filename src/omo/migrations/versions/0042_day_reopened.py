"""store days reopened (取消日結): a closing's version, and who reopened it, when and why

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0042"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("store_day_closings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("reopened_at", omo.shared.sqltypes.UtcDateTime(timezone=True))
        )
        batch_op.add_column(sa.Column("reopened_by", sa.String(length=80)))
        batch_op.add_column(sa.Column("reopen_reason", sa.String(length=200)))


def downgrade() -> None:
    with op.batch_alter_table("store_day_closings", schema=None) as batch_op:
        batch_op.drop_column("reopen_reason")
        batch_op.drop_column("reopened_by")
        batch_op.drop_column("reopened_at")
        batch_op.drop_column("version")
