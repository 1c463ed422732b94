"""returns policy: which refunds need a manager's approval, and who approved each refund

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omo.shared.sqltypes

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "returns_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("created_at", omo.shared.sqltypes.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns_policies")),
    )
    with op.batch_alter_table("order_refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_refunds", schema=None) as batch_op:
        batch_op.drop_column("approved_by")
    op.drop_table("returns_policies")
