"""basket rules of the last analytics refresh

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "basket_rules",
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("antecedent", sa.String(length=64), nullable=False),
        sa.Column("consequent", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["analytics_runs.id"], name=op.f("fk_basket_rules_run_id_analytics_runs")
        ),
        sa.PrimaryKeyConstraint("level", "antecedent", "consequent", name=op.f("pk_basket_rules")),
    )


def downgrade() -> None:
    op.drop_table("basket_rules")
