"""outbox retention: each pruning of facts past the retention period (the position it removed
through, so a reader behind it is told), and a subscription's facts removed before it posted them

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AT = omo.shared.sqltypes.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox_prunings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("through_id", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("cutoff", _AT, nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_prunings")),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("skipped")
    op.drop_table("outbox_prunings")
