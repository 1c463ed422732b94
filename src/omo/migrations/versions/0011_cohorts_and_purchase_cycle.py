"""cohort retention of the last analytics refresh; each member's purchase cycle

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cohort_retention",
        sa.Column("cohort", sa.String(length=7), nullable=False),
        sa.Column("months_since", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytics_runs.id"],
            name=op.f("fk_cohort_retention_run_id_analytics_runs"),
        ),
        sa.PrimaryKeyConstraint("cohort", "months_since", name=op.f("pk_cohort_retention")),
    )
    with op.batch_alter_table("member_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cycle_days", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("member_scores", schema=None) as batch_op:
        batch_op.drop_column("cycle_days")
    op.drop_table("cohort_retention")
